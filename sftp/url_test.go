package sftp_test

import (
	"strings"
	"testing"

	"github.com/litestream-go/litestream/sftp"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct{ url, host, user, password, path, addr string }{
		{"sftp://alice@example.com/backups/db", "example.com", "alice", "", "/backups/db", "example.com:22"},
		{"sftp://alice:s%40cret@example.com:2222/backups/db", "example.com:2222", "alice", "s@cret", "/backups/db", "example.com:2222"},
		{"sftp://alice@example.com", "example.com", "alice", "", "", "example.com:22"},
		{"sftp://alice@example.com/", "example.com", "alice", "", "/", "example.com:22"},
		{"sftp://alice@[::1]:2022/db", "[::1]:2022", "alice", "", "/db", "[::1]:2022"},
		{"sftp://example.com/db", "example.com", "", "", "/db", "example.com:22"},
	} {
		c, err := sftp.ParseURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if c.Host != tc.host || c.User != tc.user || c.Password != tc.password || c.Path != tc.path || c.Addr() != tc.addr {
			t.Errorf("%s: host %q user %q password %q path %q addr %q", tc.url, c.Host, c.User, c.Password, c.Path, c.Addr())
		}
	}
	for _, bad := range []string{"sftp:///db", "sftp://", "s3://b/p", "sftp://u:hunter2@h/p?x=1", "sftp://u:hunter2@h:port/p", "sftp://u:hunter2@/p"} {
		_, err := sftp.ParseURL(bad)
		if err == nil {
			t.Errorf("%s accepted", bad)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the password is in the error: %v", bad, err)
		}
		t.Log(err)
	}
}
