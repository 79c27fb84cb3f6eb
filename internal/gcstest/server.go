// Package gcstest runs a real Google Cloud Storage emulator
// (fake-gcs-server) on 127.0.0.1 for tests, and a proxy that cuts
// response bodies short to put in front of it.
//
// Invariants of a Server:
//  1. It is reached at Addr for its whole life: Stop and Start reuse the
//     port, so clients built before an outage find it again after.
//  2. A filesystem server keeps its objects across Stop and Start; a
//     memory server loses them (fake-gcs-server holds them in the process).
//  3. The Go client reaches it only through STORAGE_EMULATOR_HOST
//     (UseEmulator), and -public-host is Addr, so that the client's XML
//     reads (to the emulator's host) are served as object downloads.
package gcstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a fake-gcs-server process.
type Server struct {
	t    testing.TB
	bin  string
	root string // filesystem root; "" for the memory backend
	Addr string // 127.0.0.1:PORT
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// Endpoint returns the server's http URL.
func (s *Server) Endpoint() string { return "http://" + s.Addr }

// findBinary locates fake-gcs-server: $FAKE_GCS_SERVER, the repository's
// bin/, PATH, then $GOPATH/bin.
func findBinary() (string, error) {
	if p := os.Getenv("FAKE_GCS_SERVER"); p != "" {
		return p, nil
	}
	_, file, _, _ := runtime.Caller(0)
	if p := filepath.Join(filepath.Dir(file), "..", "..", "bin", "fake-gcs-server"); fileExists(p) {
		return p, nil
	}
	if p, err := exec.LookPath("fake-gcs-server"); err == nil {
		return p, nil
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		if p := filepath.Join(strings.TrimSpace(string(out)), "bin", "fake-gcs-server"); fileExists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("fake-gcs-server not found: run 'make tools' (or go install github.com/fsouza/fake-gcs-server@v1.56.1), or set $FAKE_GCS_SERVER")
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// StartServer starts fake-gcs-server with the memory backend on a free
// port and stops it when the test ends. A missing binary fails the test:
// GCS tests are never skipped.
func StartServer(t testing.TB) *Server { return start(t, "") }

// StartFilesystemServer is StartServer with the filesystem backend in a
// directory of the test's, so that objects survive Stop and Start.
func StartFilesystemServer(t testing.TB) *Server { return start(t, t.TempDir()) }

func start(t testing.TB, root string) *Server {
	t.Helper()
	bin, err := findBinary()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{t: t, bin: bin, root: root, Addr: addr, log: filepath.Join(t.TempDir(), "fake-gcs-server.log")}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// UseEmulator points the Go client of this process (and of the processes
// it starts) at the server, for the rest of the test.
func (s *Server) UseEmulator(t testing.TB) { t.Setenv("STORAGE_EMULATOR_HOST", s.Addr) }

// Start (re)starts the server process on the same port (and directory).
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	args := []string{"-scheme", "http", "-host", "127.0.0.1", "-port", port, "-public-host", s.Addr, "-log-level", "warn"}
	if s.root == "" {
		args = append(args, "-backend", "memory")
	} else {
		args = append(args, "-backend", "filesystem", "-filesystem-root", s.root)
	}
	cmd := exec.Command(s.bin, args...)
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start fake-gcs-server: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint() + "/storage/v1/b?project=test")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-done:
			b, _ := os.ReadFile(s.log)
			s.t.Fatalf("fake-gcs-server exited at start: %s", b)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("fake-gcs-server did not answer on %s", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server process; a filesystem server's objects stay for
// a later Start.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// CreateBucket makes a bucket with a name unique to the test, through the
// emulator's JSON API, and returns its name.
func (s *Server) CreateBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("b%d", time.Now().UnixNano())
	body, _ := json.Marshal(map[string]string{"name": name})
	resp, err := http.Post(s.Endpoint()+"/storage/v1/b?project=test", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create bucket: HTTP %d", resp.StatusCode)
	}
	return name
}

// ObjectNames lists every object of a bucket, through the emulator's JSON
// API rather than the client under test.
func (s *Server) ObjectNames(t testing.TB, bucket string) []string {
	t.Helper()
	var names []string
	token := ""
	for {
		u := s.Endpoint() + "/storage/v1/b/" + bucket + "/o?maxResults=1000"
		if token != "" {
			u += "&pageToken=" + token
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatalf("list bucket %s: %v", bucket, err)
		}
		var page struct {
			Items         []struct{ Name string }
			NextPageToken string
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("list bucket %s: %v", bucket, err)
		}
		for _, it := range page.Items {
			names = append(names, it.Name)
		}
		if token = page.NextPageToken; token == "" {
			return names
		}
	}
}
