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
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/litestream-go/litestream/internal/testserver"
)

// Server is a fake-gcs-server process.
type Server struct {
	t    testing.TB
	Addr string // 127.0.0.1:PORT
	proc *testserver.Process
}

// Endpoint returns the server's http URL.
func (s *Server) Endpoint() string { return "http://" + s.Addr }

// binary is where fake-gcs-server is looked for: $FAKE_GCS_SERVER, the
// repository's bin/, PATH, then $GOPATH/bin.
var binary = testserver.Binary{
	Name: "fake-gcs-server", Env: "FAKE_GCS_SERVER", Paths: []string{"bin/fake-gcs-server"}, GoBin: true,
	Hint: "or go install github.com/fsouza/fake-gcs-server@v1.56.1",
}

// StartServer starts fake-gcs-server with the memory backend on a free
// port and stops it when the test ends. A missing binary fails the test:
// GCS tests are never skipped.
func StartServer(t testing.TB) *Server { return start(t, "") }

// StartFilesystemServer is StartServer with the filesystem backend in a
// directory of the test's, so that objects survive Stop and Start.
func StartFilesystemServer(t testing.TB) *Server { return start(t, t.TempDir()) }

// start starts the server with the filesystem backend in root, or the
// memory backend when root is "".
func start(t testing.TB, root string) *Server {
	t.Helper()
	bin, addr := testserver.Prepare(t, binary)
	_, port, _ := net.SplitHostPort(addr)
	args := []string{"-scheme", "http", "-host", "127.0.0.1", "-port", port, "-public-host", addr, "-log-level", "warn"}
	if root == "" {
		args = append(args, "-backend", "memory")
	} else {
		args = append(args, "-backend", "filesystem", "-filesystem-root", root)
	}
	s := &Server{t: t, Addr: addr, proc: &testserver.Process{
		Name: "fake-gcs-server", Addr: addr, Log: filepath.Join(t.TempDir(), "fake-gcs-server.log"),
		Command: func() *exec.Cmd { return exec.Command(bin, args...) },
		Ready:   testserver.HTTPAnswers("http://" + addr + "/storage/v1/b?project=test"),
		Poll:    20 * time.Millisecond,
	}}
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
	s.proc.Start(s.t)
}

// Stop kills the server process; a filesystem server's objects stay for
// a later Start.
func (s *Server) Stop() { s.proc.Stop() }

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
