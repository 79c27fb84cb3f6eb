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
	"github.com/litestream-go/litestream/internal/replicatest"
	"github.com/litestream-go/litestream/internal/sftptest"
	"github.com/litestream-go/litestream/sftp"
)

// checks are the startup check's assertions: one line each, logged.
var checks = replicatest.StoreCheck{Log: true}

// oneLine fails the test if err is not one line.
func oneLine(t *testing.T, err error) {
	t.Helper()
	checks.OurWords(t, err)
}

// closing is a client whose check closes its connections after.
type closing struct{ *sftp.ReplicaClient }

func (c closing) CheckStore(ctx context.Context) error {
	defer c.Close()
	return c.ReplicaClient.CheckStore(ctx)
}

// TestCheckStore: the startup check tells bad credentials, a directory
// that cannot be, and an unreachable server at once or within its bound,
// in one line each, and never shows the password.
func TestCheckStore(t *testing.T) {
	srv := sftptest.StartServer(t)
	check := func(c *sftp.ReplicaClient, bound time.Duration) (time.Duration, error) {
		return replicatest.Check(closing{c}, bound)
	}
	permanent := func(t *testing.T, c *sftp.ReplicaClient, want ...string) error {
		t.Helper()
		return checks.Permanent(t, closing{c}, want...)
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
		addr := replicatest.ClosedPort(t)
		c := newClient(t, srv)
		c.Host = addr
		checks.Unreachable(t, closing{c}, "cannot reach the SFTP server "+addr)
	})
	t.Run("no answer", func(t *testing.T) {
		addr := replicatest.SilentServer(t)
		c := newClient(t, srv)
		c.Host = addr
		checks.NoAnswer(t, closing{c}, "cannot reach the SFTP server "+addr+" (no answer in 1.5s)")
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
	c.Host, c.MaxAttempts = replicatest.ClosedPort(t), 2
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
