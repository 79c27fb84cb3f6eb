// Package abstest runs a real Azure Blob Storage emulator (Azurite) on
// 127.0.0.1 for tests, with the well-known development account.
package abstest

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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
)

// The development account every Azurite serves (its published key).
const (
	AccountName = "devstoreaccount1"
	AccountKey  = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Server is an azurite-blob process serving a directory.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	Addr string // 127.0.0.1:PORT
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logf string
}

// Endpoint returns the service URL of the development account.
func (s *Server) Endpoint() string { return "http://" + s.Addr + "/" + AccountName }

// findBinary locates azurite-blob: $AZURITE_BLOB, the repository's bin/,
// then PATH.
func findBinary() (string, error) {
	if p := os.Getenv("AZURITE_BLOB"); p != "" {
		return p, nil
	}
	_, file, _, _ := runtime.Caller(0)
	if p := filepath.Join(filepath.Dir(file), "..", "..", "bin", "azurite", "node_modules", ".bin", "azurite-blob"); fileExists(p) {
		return p, nil
	}
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("azurite-blob not found: run 'make tools' (it installs Azurite with npm into bin/azurite), or set $AZURITE_BLOB")
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// StartServer starts Azurite on a free port and stops it when the test
// ends. A missing binary fails the test: Azure tests are never skipped.
func StartServer(t testing.TB) *Server {
	t.Helper()
	bin, err := findBinary()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), Addr: addr, logf: filepath.Join(t.TempDir(), "azurite.log")}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func command(bin, addr, dir string) *exec.Cmd {
	_, port, _ := net.SplitHostPort(addr)
	return exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", port, "--location", dir,
		"--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose")
}

// Start (re)starts the server process on the same port and directory.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	cmd := command(s.bin, s.Addr, s.dir)
	logf, err := os.OpenFile(s.logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start azurite: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	s.cmd, s.done = cmd, done
	if err := waitReady("http://"+s.Addr, done); err != nil {
		b, _ := os.ReadFile(s.logf)
		s.t.Fatalf("azurite on %s: %v\n%s", s.Addr, err, b)
	}
}

// waitReady waits until the server answers HTTP, or exits.
func waitReady(base string, done <-chan struct{}) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/" + AccountName + "?comp=list")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("exited at start")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer in 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server process; its data stays for a later Start.
// Azurite keeps its metadata in memory and saves it at exit, so it is
// asked to exit (SIGTERM), and killed only if it does not within 10s.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	stop(s.cmd, s.done)
	s.cmd = nil
}

func stop(cmd *exec.Cmd, done <-chan struct{}) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Client returns an SDK service client for the development account.
func Client(endpoint string) (*service.Client, error) {
	cred, err := service.NewSharedKeyCredential(AccountName, AccountKey)
	if err != nil {
		return nil, err
	}
	return service.NewClientWithSharedKeyCredential(endpoint+"/", cred, nil)
}

var containerSeq atomic.Int64

// CreateContainer makes a container with a name unique to the process
// and returns it.
func (s *Server) CreateContainer(t testing.TB) string {
	t.Helper()
	name, err := createContainer(s.Endpoint())
	if err != nil {
		t.Fatalf("create container: %v", err)
	}
	return name
}

func createContainer(endpoint string) (string, error) {
	client, err := Client(endpoint)
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("c%d-%d", time.Now().UnixNano(), containerSeq.Add(1))
	if _, err := client.CreateContainer(context.Background(), name, nil); err != nil {
		return "", err
	}
	return strings.ToLower(name), nil
}
