package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litestream-go/litestream/sftp"
)

// testHostKey is a valid ed25519 public key line, for host-key.
const testHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"

// TestSFTPReplicaURL: sftp://USER[:PASSWORD]@HOST[:PORT]/PATH is an sftp
// replica; malformed ones fail naming the form, without the password.
func TestSFTPReplicaURL(t *testing.T) {
	rc, err := parseReplicaURL("sftp://alice:hunter2@host:2222/backups/db")
	if err != nil || rc.Type != "sftp" || rc.URL != "sftp://alice:hunter2@host:2222/backups/db" {
		t.Fatalf("parseReplicaURL = %+v, %v", rc, err)
	}
	requireURLsRefused(t, "hunter2", []refusal{
		{"sftp:///db", "write sftp://USER[:PASSWORD]@HOST[:PORT]/PATH"},
		{"sftp:host/db", "write sftp://USER[:PASSWORD]@HOST[:PORT]/PATH"},
		{"sftp://alice:hunter2@/db", `"sftp://alice:xxxxx@/db": write sftp://`},
		{"sftp://alice:hunter2@host/db?key=x", "takes no ?query"},
		{"sftp://alice:hunter2@host:port/db", "invalid port"},
	})
}

// TestSFTPConfig: the URL first, then the explicit keys (v0.3's host,
// user, password, key-path, path; host-key and known-hosts-path), which
// win. The URL's path is absolute, as in v0.3; a path key is used as
// written (relative to the login directory).
func TestSFTPConfig(t *testing.T) {
	home, _ := os.UserHomeDir()
	for _, tc := range []struct {
		name, replica                             string
		host, user, password, keyPath, path, addr string
	}{
		{"url", "url: sftp://alice:pw@host/backups/db", "host", "alice", "pw", "", "/backups/db", "host:22"},
		{"url with port, no path", "url: sftp://alice:pw@host:2222", "host:2222", "alice", "pw", "", "", "host:2222"},
		{"url and keys", "url: sftp://alice:pw@host/db\n        user: bob\n        password: pw2\n        key-path: ~/.ssh/id_ed25519",
			"host", "bob", "pw2", filepath.Join(home, ".ssh/id_ed25519"), "/db", "host:22"},
		{"url without user", "url: sftp://host/db\n        user: bob\n        key-path: /k", "host", "bob", "", "/k", "/db", "host:22"},
		{"keys", "type: sftp\n        host: host:2022\n        user: bob\n        password: pw\n        path: backups/db", "host:2022", "bob", "pw", "", "backups/db", "host:2022"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := replicaClientOf[*sftp.ReplicaClient](t, tc.replica)
			if c.Host != tc.host || c.User != tc.user || c.Password != tc.password || c.KeyPath != tc.keyPath || c.Path != tc.path || c.Addr() != tc.addr {
				t.Fatalf("got host %q user %q password %q key-path %q path %q addr %q", c.Host, c.User, c.Password, c.KeyPath, c.Path, c.Addr())
			}
		})
	}
	c := replicaClientOf[*sftp.ReplicaClient](t, "url: sftp://alice:pw@host/db\n        host-key: "+testHostKey)
	if c.HostKey != testHostKey || c.KnownHostsPath != "" {
		t.Fatalf("host-key %q known-hosts-path %q", c.HostKey, c.KnownHostsPath)
	}
	c = replicaClientOf[*sftp.ReplicaClient](t, "url: sftp://alice:pw@host/db\n        known-hosts-path: ~/.ssh/known_hosts")
	if c.KnownHostsPath != filepath.Join(home, ".ssh/known_hosts") {
		t.Fatalf("known-hosts-path %q", c.KnownHostsPath)
	}
}

func TestSFTPConfigErrors(t *testing.T) {
	requireReplicasRefused(t, "hunter2", []refusal{
		{"type: sftp\n        user: bob\n        password: hunter2", "line 4: sftp replica needs a url (sftp://USER@HOST[:PORT]/PATH) or a host"},
		{"url: sftp://host/db\n        password: hunter2", "line 4: sftp replica has no user: write sftp://USER@HOST/PATH, or set user"},
		{"url: sftp://bob@host/db", `line 4: sftp replica for user "bob" has neither a password nor a key-path`},
		{"url: sftp://bob:hunter2@host/db\n        host: other", "both url and host"},
		{"url: sftp://bob:hunter2@host/db\n        path: db", "both path and url"},
		{"url: sftp://bob:hunter2@host/db\n        host-key: ssh-ed25519 nope", "is not a public key line"},
		{"url: sftp://bob:hunter2@host/db\n        host-key: " + testHostKey + "\n        known-hosts-path: /k", "both host-key and known-hosts-path"},
		{"type: sftp\n        host: 'h:1:2'\n        user: bob\n        password: hunter2", `sftp host "h:1:2" is not HOST or HOST:PORT`},
		{"type: sftp\n        host: 'h:99999'\n        user: bob\n        password: hunter2", `sftp host "h:99999" is not HOST or HOST:PORT`},
		{"type: s3\n        url: sftp://bob:hunter2@host/db", `type "s3" does not match url scheme "sftp"`},
	})
}

// TestSFTPSharedReplicaPath: two sftp replicas in one place, however
// spelt, or one inside the other, are refused at load; other hosts,
// ports, neighbour paths, and relative paths of other users are not.
func TestSFTPSharedReplicaPath(t *testing.T) {
	two := twoReplicaConfig
	keys := func(host, user, path string) string {
		return "type: sftp\n        host: " + host + "\n        user: " + user + "\n        password: pw\n        path: " + path
	}
	requireDests(t, []destCase{
		{"url and keys", two("url: sftp://alice:pw@Host/backups/app/", keys("host:22", "bob", "/backups/app")),
			[]string{"line 7:", "writes to sftp://bob@host:22/backups/app, as does", "(line 4)"}},
		{"relative, same user", two(keys("host", "bob", "app"), keys("host", "bob", "./app/")), []string{"line 11:", `writes to "app" in the login directory of bob@host:22`}},
		{"inside", two("url: sftp://a:pw@host/backups", "url: sftp://b:pw@host/backups/app"), []string{"line 7:", "inside sftp://a@host:22/backups", "must not nest"}},
		{"login directory holds the rest", two(keys("host", "bob", "app"), "url: sftp://bob:pw@host"), []string{"writes to the login directory of bob@host:22, which holds"}},
		{"relative, other users", two(keys("host", "bob", "app"), keys("host", "carol", "app")), nil},
		{"neighbour paths", two("url: sftp://a:pw@host/app", "url: sftp://a:pw@host/apple"), nil},
		{"other port", two("url: sftp://a:pw@host/app", "url: sftp://a:pw@host:2222/app"), nil},
		{"other host", two("url: sftp://a:pw@host/app", "url: sftp://a:pw@host2/app"), nil},
		{"file and sftp", two("path: /app", "url: sftp://a:pw@host/app"), nil},
	}, ":pw")
}

// TestSFTPReplicaLogAttrs: the startup line of an sftp replica names its
// host, user, path, login method and host key check, never the password.
func TestSFTPReplicaLogAttrs(t *testing.T) {
	for _, tc := range []struct{ replica, want string }{
		{"url: sftp://alice:hunter2@host:2222/backups/db\n        sync-interval: 5s",
			"replica=sftp type=sftp host=host:2222 user=alice path=/backups/db auth=password host_key=\"not verified\" sync_interval=5s"},
		{"url: sftp://alice@host/db\n        key-path: /keys/id\n        host-key: " + testHostKey,
			"host=host:22 user=alice path=/db auth=key key_path=/keys/id host_key=\"pinned by host-key\""},
		{"url: sftp://alice:hunter2@host/db\n        key-path: /keys/id\n        known-hosts-path: /etc/ssh/known",
			"auth=password+key key_path=/keys/id host_key=\"checked against /etc/ssh/known\""},
	} {
		line := replicaLogLine(t, tc.replica)
		if !strings.Contains(line, tc.want) {
			t.Errorf("%q does not contain %q", line, tc.want)
		}
		requireNoSecret(t, "log line", line, "hunter2")
	}
}
