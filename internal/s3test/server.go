// Package s3test runs a real S3-compatible server (versitygw) on 127.0.0.1
// for tests, and a fault-injecting proxy to put in front of it.
package s3test

import (
	"context"
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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Credentials of the test server.
const (
	AccessKey = "litestreamtest"
	SecretKey = "litestreamtestsecret"
)

// Server is a versitygw process serving a posix directory.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	Addr string // 127.0.0.1:PORT
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Endpoint returns the server's http URL.
func (s *Server) Endpoint() string { return "http://" + s.Addr }

// findBinary locates versitygw: $VERSITYGW, the repository's bin/, PATH,
// then $GOPATH/bin.
func findBinary() (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		return p, nil
	}
	_, file, _, _ := runtime.Caller(0)
	if p := filepath.Join(filepath.Dir(file), "..", "..", "bin", "versitygw"); fileExists(p) {
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		if p := filepath.Join(strings.TrimSpace(string(out)), "bin", "versitygw"); fileExists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw not found: run 'make tools' (or go install github.com/versity/versitygw/cmd/versitygw@v1.8.0), or set $VERSITYGW")
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// StartServer starts versitygw on a free port and stops it when the test
// ends. A missing binary fails the test: S3 tests are never skipped.
func StartServer(t testing.TB) *Server {
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
	s := &Server{t: t, bin: bin, dir: t.TempDir(), Addr: addr}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start (re)starts the server process on the same port and directory.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command(s.bin, "--port", s.Addr, "--access", AccessKey, "--secret", SecretKey, "posix", s.dir)
	logf, err := os.Create(filepath.Join(s.t.TempDir(), "versitygw.log"))
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start versitygw: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint())
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			s.t.Fatalf("versitygw exited at start: %s", b)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("versitygw did not answer on %s", s.Addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server process; its data stays for a later Start.
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

// Client returns an SDK client for the server.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint()),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	})
}

// CreateBucket makes a bucket with a name unique to the test and returns it.
func (s *Server) CreateBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("b%d", time.Now().UnixNano())
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return name
}
