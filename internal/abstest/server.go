// Package abstest runs a real Azure Blob Storage emulator (Azurite) on
// 127.0.0.1 for tests, with the well-known development account.
package abstest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/litestream-go/litestream/internal/testserver"
)

// The development account every Azurite serves (its published key).
const (
	AccountName = "devstoreaccount1"
	AccountKey  = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Server is an azurite-blob process serving a directory.
type Server struct {
	t    testing.TB
	Addr string // 127.0.0.1:PORT
	proc *testserver.Process
}

// Endpoint returns the service URL of the development account.
func (s *Server) Endpoint() string { return "http://" + s.Addr + "/" + AccountName }

// binary is where azurite-blob is looked for: $AZURITE_BLOB, the
// repository's bin/, then PATH.
var binary = testserver.Binary{
	Name: "azurite-blob", Env: "AZURITE_BLOB", Paths: []string{"bin/azurite/node_modules/.bin/azurite-blob"},
	Hint: "it installs Azurite with npm into bin/azurite",
}

// StartServer starts Azurite on a free port and stops it when the test
// ends. A missing binary fails the test: Azure tests are never skipped.
func StartServer(t testing.TB) *Server {
	t.Helper()
	bin, addr := testserver.Prepare(t, binary)
	dir := t.TempDir()
	_, port, _ := net.SplitHostPort(addr)
	s := &Server{t: t, Addr: addr, proc: &testserver.Process{
		Name: "azurite", Addr: addr, Log: filepath.Join(t.TempDir(), "azurite.log"),
		Command: func() *exec.Cmd {
			return exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", port, "--location", dir,
				"--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose")
		},
		Ready:   testserver.HTTPAnswers("http://" + addr + "/" + AccountName + "?comp=list"),
		Timeout: 60 * time.Second,
		Halt:    halt,
	}}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start (re)starts the server process on the same port and directory.
func (s *Server) Start() {
	s.t.Helper()
	s.proc.Start(s.t)
}

// Stop stops the server process; its data stays for a later Start.
// Azurite keeps its metadata in memory and saves it at exit, so it is
// asked to exit (SIGTERM), and killed only if it does not within 10s.
func (s *Server) Stop() { s.proc.Stop() }

func halt(cmd *exec.Cmd, done <-chan struct{}) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
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
