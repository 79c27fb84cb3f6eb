package sftp_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/litestream-go/litestream/internal/sftptest"
	"github.com/litestream-go/litestream/sftp"
)

// TestHostKey: a pinned host key (host-key or known-hosts-path) is
// verified, and a mismatch is one line with the fingerprint offered; with
// neither, any key is accepted and a warning is logged once per client.
func TestHostKey(t *testing.T) {
	srv := sftptest.StartServer(t)
	other := sftptest.StartServer(t) // another host key
	ctx := context.Background()
	offered := ssh.FingerprintSHA256(srv.HostKey)
	offeredFirst := ssh.FingerprintSHA256(srv.ECDSAHostKey) // when the client asks for any type
	knownHosts := func(t *testing.T, line string) string {
		p := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(p, []byte("# test\n"+line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mustFail := func(t *testing.T, c *sftp.ReplicaClient, offered string, want ...string) {
		t.Helper()
		defer c.Close()
		_, err := c.Generations(ctx)
		if err == nil {
			t.Fatal("connected")
		}
		for _, w := range append(want, offered) {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("error %q lacks %q", err, w)
			}
		}
		oneLine(t, err)
		if err := c.CheckStore(ctx); err == nil || !strings.Contains(err.Error(), offered) {
			t.Fatalf("CheckStore: %v", err)
		}
		t.Log(err)
	}
	mustPass := func(t *testing.T, c *sftp.ReplicaClient) {
		t.Helper()
		defer c.Close()
		if _, err := c.Generations(ctx); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("host-key matches", func(t *testing.T) {
		mustPass(t, newClient(t, srv))
	})
	t.Run("host-key in known_hosts form matches", func(t *testing.T) {
		c := newClient(t, srv)
		c.HostKey = srv.KnownHostsLine()
		mustPass(t, c)
	})
	t.Run("host-key mismatch", func(t *testing.T) {
		c := newClient(t, srv)
		c.HostKey = other.HostKeyLine()
		mustFail(t, c, offered, "the host key of the SFTP server "+srv.Addr+" does not match host-key", ssh.FingerprintSHA256(other.HostKey))
	})
	t.Run("host-key unparsable", func(t *testing.T) {
		c := newClient(t, srv)
		c.HostKey = "ssh-ed25519 notbase64"
		defer c.Close()
		if _, err := c.Generations(ctx); err == nil || !strings.Contains(err.Error(), "is not a public key line") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("known-hosts-path matches", func(t *testing.T) {
		// The server offers its ECDSA key first; the file holds only the
		// ed25519 one, which the client then asks for.
		c := newClient(t, srv)
		c.HostKey, c.KnownHostsPath = "", knownHosts(t, srv.KnownHostsLine())
		mustPass(t, c)
	})
	t.Run("host-key of the other type matches", func(t *testing.T) {
		c := newClient(t, srv)
		c.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(srv.ECDSAHostKey)))
		mustPass(t, c)
	})
	t.Run("known-hosts-path mismatch", func(t *testing.T) {
		c := newClient(t, srv)
		host := strings.Fields(srv.KnownHostsLine())[0]
		c.HostKey, c.KnownHostsPath = "", knownHosts(t, host+" "+other.HostKeyLine())
		mustFail(t, c, offered, "the host key of the SFTP server "+srv.Addr+" does not match known-hosts-path "+c.KnownHostsPath, ssh.FingerprintSHA256(other.HostKey)+" (line 2)")
	})
	t.Run("known-hosts-path without the host", func(t *testing.T) {
		c := newClient(t, srv)
		c.HostKey, c.KnownHostsPath = "", knownHosts(t, "[127.0.0.1]:1 "+srv.HostKeyLine())
		mustFail(t, c, offeredFirst, "the SFTP server "+srv.Addr+" is not in known-hosts-path "+c.KnownHostsPath, "ssh-keyscan")
	})
	t.Run("not verified", func(t *testing.T) {
		var logs bytes.Buffer
		c := newClient(t, srv)
		c.HostKey = ""
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		mustPass(t, c)
		c.Close()
		mustPass(t, c) // dials again: no second warning
		out := logs.String()
		if strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "host key is not verified") ||
			!strings.Contains(out, "host-key") || !strings.Contains(out, "known-hosts-path") || !strings.Contains(out, srv.Addr) {
			t.Fatalf("log:\n%s", out)
		}
		t.Log(out)
	})
}
