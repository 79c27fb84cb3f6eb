// Package testserver is the launcher core that the test servers share
// (internal/s3test, gcstest, abstest, sftptest): finding a server's
// program, a free port, a process that starts, is waited for, stops and
// starts again on the same port, and the faults of the proxies put in
// front of them.
//
// Invariants of a Process:
//  1. Start returns only once Ready succeeds; a process that exits first,
//     or does not get ready within the timeout, fails the test with its
//     log.
//  2. Stop returns only once the process has exited, so that a Start
//     after it finds the port free.
package testserver

import (
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

// Binary is where to look for a server's program.
type Binary struct {
	Name  string   // its name on PATH, and in messages: "versitygw"
	Env   string   // the variable that names it, tried first: "VERSITYGW"
	Paths []string // then these, relative to the repository root or absolute
	GoBin bool     // then, after PATH, $GOPATH/bin/Name
	Hint  string   // how to get it: "it installs Debian's openssh-server"
}

// Find returns the path of the program: $Env, Paths, PATH, then (GoBin)
// $GOPATH/bin; or an error that says how to get it.
func (b Binary) Find() (string, error) {
	if p := os.Getenv(b.Env); p != "" {
		return p, nil
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for _, p := range b.Paths {
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		if fileExists(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(b.Name); err == nil {
		return p, nil
	}
	if b.GoBin {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			if p := filepath.Join(strings.TrimSpace(string(out)), "bin", b.Name); fileExists(p) {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s not found: run 'make tools' (%s), or set $%s", b.Name, b.Hint, b.Env)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// FreeAddr returns a 127.0.0.1 address with a port free at the time of
// the call.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Prepare returns b's program and a free address for it: what every
// test server's start begins with. A missing program fails t: tests
// against servers are never skipped.
func Prepare(t testing.TB, b Binary) (bin, addr string) {
	t.Helper()
	bin, err := b.Find()
	if err != nil {
		t.Fatal(err)
	}
	if addr, err = FreeAddr(); err != nil {
		t.Fatal(err)
	}
	return bin, addr
}

// Process is a server process that a test starts, stops and starts again
// with the same command line (so on the same port and data).
type Process struct {
	Name    string           // for messages: "versitygw"
	Addr    string           // where it serves, for messages
	Command func() *exec.Cmd // the command of each start
	Log     string           // the file its output is appended to
	Ready   func() error     // nil once it serves
	Timeout time.Duration    // how long Start waits for Ready; 30s when 0
	Poll    time.Duration    // between tries of Ready; 50 ms when 0
	// Halt ends the process for Stop (nil: kill it). Stop then waits for
	// done, which is closed once the process has exited.
	Halt func(cmd *exec.Cmd, done <-chan struct{})

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts the process, if it is not running, and waits until it is
// ready; it fails t when it cannot.
func (p *Process) Start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return
	}
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := p.Command()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", p.Name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	p.cmd, p.done = cmd, done
	if err := WaitReady(p.Ready, done, p.Timeout, p.Poll); err != nil {
		if exited(done) {
			p.cmd = nil
		}
		b, _ := os.ReadFile(p.Log)
		t.Fatalf("%s on %s: %v:\n%s", p.Name, p.Addr, err, b)
	}
}

// exited reports whether done is closed.
func exited(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// Stop ends the process, if it is running, and waits until it has
// exited.
func (p *Process) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	if p.Halt != nil {
		p.Halt(p.cmd, p.done)
	} else {
		p.cmd.Process.Kill()
	}
	<-p.done
	p.cmd = nil
}

// HTTPAnswers returns a Ready that succeeds once url gives any HTTP
// answer.
func HTTPAnswers(url string) func() error {
	return func() error {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
}

// WaitReady calls ready every poll (50 ms when 0) until it succeeds, done
// is closed (the process exited: nil never is) or timeout (30s when 0)
// has passed.
func WaitReady(ready func() error, done <-chan struct{}, timeout, poll time.Duration) error {
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	if poll == 0 {
		poll = 50 * time.Millisecond
	}
	deadline := time.Now().Add(timeout)
	for {
		if ready() == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("exited at start")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer in %s", timeout)
		}
		time.Sleep(poll)
	}
}
