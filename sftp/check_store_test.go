package sftp_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/sftptest"
	"github.com/litestream-go/litestream/sftp"
)

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// oneLine fails the test if err is not one line.
func oneLine(t *testing.T, err error) {
	t.Helper()
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
}

// TestCheckStore: the startup check tells bad credentials, a directory
// that cannot be, and an unreachable server at once or within its bound,
// in one line each, and never shows the password.
func TestCheckStore(t *testing.T) {
	srv := sftptest.StartServer(t)
	check := func(c *sftp.ReplicaClient, bound time.Duration) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		defer c.Close()
		start := time.Now()
		err := c.CheckStore(ctx)
		return time.Since(start), err
	}
	permanent := func(t *testing.T, c *sftp.ReplicaClient, want ...string) error {
		t.Helper()
		took, err := check(c, 5*time.Second)
		if err == nil {
			t.Fatal("check passed")
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("error %q lacks %q", err, w)
			}
		}
		if took > 2*time.Second || errors.Is(err, litestream.ErrStoreBusy) {
			t.Fatalf("a permanent error was retried (%s) or taken for a busy store: %v", took, err)
		}
		oneLine(t, err)
		t.Log(err)
		return err
	}

	t.Run("ok", func(t *testing.T) {
		if _, err := check(newClient(t, srv), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("creates a missing directory", func(t *testing.T) {
		c := newClient(t, srv)
		c.Path = filepath.Join(c.Path, "a", "b")
		if _, err := check(c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(c.Path); err != nil || !fi.IsDir() {
			t.Fatalf("directory not created: %v", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		sftptest.EnsurePasswordUser(t)
		c := &sftp.ReplicaClient{Host: srv.Addr, User: sftptest.PasswordUser, Password: "wrong-password-value", HostKey: srv.HostKeyLine()}
		err := permanent(t, c, "the SFTP server "+srv.Addr+" refused the login of user \""+sftptest.PasswordUser+"\" with a password: check user, password")
		if strings.Contains(err.Error(), "wrong-password-value") {
			t.Fatalf("the password is in the error: %v", err)
		}
	})
	t.Run("right password", func(t *testing.T) {
		dir := sftptest.EnsurePasswordUser(t)
		c := &sftp.ReplicaClient{Host: srv.Addr, User: sftptest.PasswordUser, Password: sftptest.Password, Path: dir, HostKey: srv.HostKeyLine()}
		if _, err := check(c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		other := sftptest.StartServer(t) // its client key is not authorized here
		c := newClient(t, srv)
		c.KeyPath = other.ClientKeyPath
		key, _ := os.ReadFile(other.ClientKeyPath)
		err := permanent(t, c, "refused the login of user \""+srv.User+"\" with the key in key-path "+other.ClientKeyPath, "authorized_keys")
		for _, line := range strings.Split(string(key), "\n")[1:3] {
			if strings.Contains(err.Error(), line) {
				t.Fatalf("the private key is in the error: %v", err)
			}
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		// As root anything can be created, except under a file.
		c := newClient(t, srv)
		file := filepath.Join(c.Path, "file")
		if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		c.Path = filepath.Join(file, "db")
		permanent(t, c, `directory "`+c.Path+`" does not exist on the SFTP server `+srv.Addr+` and user "`+srv.User+`" cannot create it`, "create it, or fix path")
	})
	t.Run("missing directory of a user", func(t *testing.T) {
		sftptest.EnsurePasswordUser(t)
		c := &sftp.ReplicaClient{Host: srv.Addr, User: sftptest.PasswordUser, Password: sftptest.Password, Path: "/root/no-such-dir/db", HostKey: srv.HostKeyLine()}
		err := permanent(t, c, `user "`+sftptest.PasswordUser+`" may not access directory "/root/no-such-dir/db" on the SFTP server `+srv.Addr+` (permission denied)`)
		if strings.Contains(err.Error(), sftptest.Password) {
			t.Fatalf("the password is in the error: %v", err)
		}
	})
	t.Run("path is a file", func(t *testing.T) {
		c := newClient(t, srv)
		file := filepath.Join(c.Path, "file")
		os.WriteFile(file, []byte("x"), 0o644)
		c.Path = file
		permanent(t, c, "is a file, not a directory")
	})
	t.Run("unreachable", func(t *testing.T) {
		addr := closedPort(t)
		c := newClient(t, srv)
		c.Host = addr
		took, err := check(c, 1500*time.Millisecond)
		if err == nil || errors.Is(err, litestream.ErrStoreBusy) || !strings.Contains(err.Error(), "cannot reach the SFTP server "+addr) ||
			!strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err = %v", err)
		}
		if took < time.Second {
			t.Fatalf("gave up after %s, before its bound", took)
		}
		oneLine(t, err)
	})
	t.Run("no answer", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() { // accepts, and never answers
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				conns = append(conns, c)
			}
		}()
		c := newClient(t, srv)
		c.Host = l.Addr().String()
		took, err := check(c, 1500*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "cannot reach the SFTP server "+l.Addr().String()+" (no answer in 1.5s)") || took > 3*time.Second {
			t.Fatalf("after %s: %v", took, err)
		}
	})
	t.Run("closes every handshake", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
				c.Close()
			}
		}()
		c := newClient(t, srv)
		c.Host = l.Addr().String()
		_, err = check(c, 1500*time.Millisecond)
		if !errors.Is(err, litestream.ErrStoreBusy) || !strings.Contains(err.Error(), "closed the connection during the SSH handshake") {
			t.Fatalf("err = %v", err)
		}
		oneLine(t, err)
	})
}

// TestErrors: requests other than the check fail in the same words,
// after their retries.
func TestErrors(t *testing.T) {
	srv := sftptest.StartServer(t)
	ctx := context.Background()
	c := newClient(t, srv)
	c.Host, c.MaxAttempts = closedPort(t), 2
	_, err := c.Generations(ctx)
	if err == nil || !strings.Contains(err.Error(), "list "+c.Path+"/generations: cannot reach the SFTP server") || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Fatalf("err = %v", err)
	}
	c = newClient(t, srv)
	c.User = ""
	if _, err := c.Generations(ctx); err == nil || !strings.Contains(err.Error(), "has no user") {
		t.Fatalf("no user: %v", err)
	}
	c = newClient(t, srv)
	c.KeyPath = filepath.Join(t.TempDir(), "nokey")
	if _, err := c.Generations(ctx); err == nil || !strings.Contains(err.Error(), "cannot read key-path "+c.KeyPath+": no such file or directory") {
		t.Fatalf("missing key file: %v", err)
	}
	c = newClient(t, srv)
	c.KeyPath = srv.HostKeyLine() // not a file
	c.KeyPath = filepath.Join(t.TempDir(), "notakey")
	os.WriteFile(c.KeyPath, []byte("not a key"), 0o600)
	if _, err := c.Generations(ctx); err == nil || !strings.Contains(err.Error(), "is not a private key") {
		t.Fatalf("bad key file: %v", err)
	}
}
