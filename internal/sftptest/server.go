// Package sftptest runs a real OpenSSH sshd on 127.0.0.1 for tests, with
// its own config, host key and client key in a temporary directory, serving
// the sftp subsystem (internal-sftp).
package sftptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/litestream-go/litestream/internal/testserver"
)

// The system user for password logins, and its password. Only a test
// machine has it: EnsurePasswordUser creates it when run as root.
const (
	PasswordUser = "litestream-sftp"
	Password     = "litestream-test-pw-7d1c"
)

// Server is an sshd process and the keys to reach it.
type Server struct {
	t testing.TB

	Addr          string        // 127.0.0.1:PORT
	HostKey       ssh.PublicKey // the server's ed25519 host key
	ECDSAHostKey  ssh.PublicKey // its second host key, which Go's client prefers when it asks for any
	User          string        // the current user, who logs in with ClientKeyPath
	ClientKeyPath string        // an unencrypted OpenSSH private key file
	DataDir       string        // a directory User may write to, for replicas
	logPath       string
	proc          *testserver.Process
}

// HostKeyLine returns the host key as an authorized_keys line
// ("ssh-ed25519 AAAA..."), the form of the host-key setting.
func (s *Server) HostKeyLine() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey)))
}

// KnownHostsLine returns the host key as a known_hosts line for Addr.
func (s *Server) KnownHostsLine() string {
	host, port, _ := net.SplitHostPort(s.Addr)
	return "[" + host + "]:" + port + " " + s.HostKeyLine()
}

// binary is where sshd is looked for: $SSHD, the repository's bin/,
// /usr/sbin/sshd, then PATH.
var binary = testserver.Binary{
	Name: "sshd", Env: "SSHD", Paths: []string{"bin/sshd", "/usr/sbin/sshd"},
	Hint: "it installs Debian's openssh-server",
}

// StartServer starts sshd on a free port and stops it when the test ends.
// A missing binary fails the test: SFTP tests are never skipped.
func StartServer(t testing.TB) *Server {
	t.Helper()
	bin, addr := testserver.Prepare(t, binary)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir() // config, keys, log
	config := filepath.Join(dir, "sshd_config")
	s := &Server{t: t, Addr: addr, User: u.Username, DataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "sshd.log")}
	s.proc = &testserver.Process{
		Name: "sshd", Addr: addr, Log: s.logPath,
		Command: func() *exec.Cmd { return exec.Command(bin, "-D", "-e", "-f", config) },
		Ready:   func() error { return greets(addr) },
		Poll:    20 * time.Millisecond,
		Halt:    halt,
	}
	if err := os.Mkdir(s.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	hostPub, err := writeKey(filepath.Join(dir, "host_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	s.HostKey = hostPub
	if s.ECDSAHostKey, err = writeECDSAKey(filepath.Join(dir, "host_ecdsa")); err != nil {
		t.Fatal(err)
	}
	s.ClientKeyPath = filepath.Join(dir, "client_ed25519")
	clientPub, err := writeKey(s.ClientKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, ssh.MarshalAuthorizedKey(clientPub), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	cfg := strings.Join([]string{
		"ListenAddress " + host,
		"Port " + port,
		"HostKey " + filepath.Join(dir, "host_ecdsa"),
		"HostKey " + filepath.Join(dir, "host_ed25519"),
		"AuthorizedKeysFile " + authorized,
		"PubkeyAuthentication yes",
		"PasswordAuthentication yes",
		"PermitEmptyPasswords no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"PermitRootLogin yes",
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"Subsystem sftp internal-sftp",
		"MaxStartups 200",
		"MaxSessions 100",
		"LogLevel VERBOSE",
		"",
	}, "\n")
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// sshd refuses to start without its privilege separation directory,
		// which only the openssh-server service creates.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// writeKey generates an ed25519 key, writes its private half to path in
// OpenSSH format and returns the public half.
func writeKey(path string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(pub)
}

// writeECDSAKey is writeKey for an ECDSA P-256 key.
func writeECDSAKey(path string) (ssh.PublicKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(&priv.PublicKey)
}

// Start (re)starts sshd on the same port, with the same keys and data.
func (s *Server) Start() {
	s.t.Helper()
	s.proc.Start(s.t)
}

// greets reports whether sshd serves on addr: it greets first, and a
// banner means it is serving.
func greets(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	if _, err := c.Read(buf); err != nil {
		return err
	}
	if !bytes.Equal(buf, []byte("SSH-")) {
		return fmt.Errorf("no SSH banner: %q", buf)
	}
	return nil
}

// Stop stops sshd and every session process it forked, so that open
// connections break as they do when a server goes down; the data stays
// for a later Start.
func (s *Server) Stop() { s.proc.Stop() }

// halt kills sshd and its sessions. Sessions run in processes of their
// own sessions (setsid), so a process group kill misses them; they are
// found by parent pid, before the parent dies and they are reparented.
func halt(cmd *exec.Cmd, _ <-chan struct{}) {
	kids := descendants(cmd.Process.Pid)
	cmd.Process.Kill()
	for _, k := range kids {
		syscall.Kill(k, syscall.SIGKILL)
	}
}

// descendants returns the pids of every process below pid.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the
		// last parenthesis.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// Log returns what sshd logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// NewDir returns a fresh, empty directory under DataDir, for one replica.
func (s *Server) NewDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp(s.DataDir, "r")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// EnsurePasswordUser makes sure the system user PasswordUser exists with
// Password, creating it (idempotently) when run as root, and returns a
// fresh directory it owns under its home, removed when the test ends. When
// not root and the user is missing, the test fails saying so.
func EnsurePasswordUser(t testing.TB) string {
	t.Helper()
	passwordUserMu.Lock()
	defer passwordUserMu.Unlock()
	u, err := user.Lookup(PasswordUser)
	if err != nil {
		if os.Geteuid() != 0 {
			t.Fatalf("the password login test needs the system user %s with password %q: run the tests as root (they create it), or create it: useradd -m %s && echo %s:%s | chpasswd",
				PasswordUser, Password, PasswordUser, PasswordUser, Password)
		}
		if out, err := exec.Command("useradd", "-m", "-d", "/home/"+PasswordUser, "-s", "/bin/sh", PasswordUser).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v: %s", PasswordUser, err, out)
		}
		if u, err = user.Lookup(PasswordUser); err != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() == 0 {
		// Set every time: the user may predate this password.
		cmd := exec.Command("chpasswd")
		cmd.Stdin = strings.NewReader(PasswordUser + ":" + Password + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("chpasswd: %v: %s", err, out)
		}
	}
	if err := os.MkdirAll(u.HomeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(u.HomeDir, "t")
	if err != nil {
		t.Fatalf("a directory for %s under %s: %v", PasswordUser, u.HomeDir, err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if os.Geteuid() == 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var passwordUserMu sync.Mutex
