package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/litestream-go/litestream/internal/sftptest"
)

// sftpKeyReplica is a replica block for dir on srv in our keys: login
// with the client key, the host key pinned.
func sftpKeyReplica(srv *sftptest.Server, dir, interval string) string {
	return fmt.Sprintf("      - name: sftp\n        type: sftp\n        host: %s\n        user: %s\n        key-path: %s\n        host-key: %q\n        path: %s\n        sync-interval: %s\n",
		srv.Addr, srv.User, srv.ClientKeyPath, srv.HostKeyLine(), dir, interval)
}

// sftpPasswordURL is the replica URL of dir on srv for the password user.
func sftpPasswordURL(srv *sftptest.Server, dir string) string {
	return fmt.Sprintf("sftp://%s:%s@%s%s", sftptest.PasswordUser, sftptest.Password, srv.Addr, dir)
}

// TestSFTPReplicateRestore replicates a live database, with one
// transaction of several MiB, to sshd as the password user (the URL in
// the config), and restores it from the sftp:// URL holding exactly the
// committed transactions, in one generation; the application's database
// is intact and the password is never logged.
func TestSFTPReplicateRestore(t *testing.T) {
	srv := sftptest.StartServer(t)
	home := sftptest.EnsurePasswordUser(t)
	u := sftpPasswordURL(srv, filepath.Join(home, "app"))
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	cfg := writeConfig(t, dir, dbPath, fmt.Sprintf("      - url: %s\n        host-key: %q\n        sync-interval: 200ms\n", u, srv.HostKeyLine()))
	rep, n := replicateWithWriter(t, cfg, dbPath, time.Second, "-n", "1500", "-rows", "5", "-size", "2000", "-big", fmt.Sprint(12<<20), "-every", "1ms")
	if !strings.Contains(rep.Output(), "type=sftp") || strings.Contains(rep.Output(), sftptest.Password) {
		t.Fatalf("the startup line does not name the sftp replica, or shows the password:\n%s", rep.Output())
	}
	requireRestored(t, dbPath, n, 1, u)
}

// TestSFTPReplicateRestoreWithOutage stops sshd, and every session it
// serves, for 30 seconds under a write load, starts it again on the same
// port, and shows that the restore holds every committed transaction, in
// one generation.
func TestSFTPReplicateRestoreWithOutage(t *testing.T) {
	srv := sftptest.StartServer(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	cfg := writeConfig(t, dir, dbPath, sftpKeyReplica(srv, srv.NewDir(t), "200ms"))
	_, n := replicateThroughOutage(t, cfg, dbPath, srv)
	requireRestored(t, dbPath, n, 1, "-config", cfg, dbPath)
}

// TestV03InteropSFTP: a replica we write to sshd restores with Litestream
// v0.3.13 (from the sftp:// URL with a password), and one v0.3.13 writes,
// configured with its own keys (type, host, user, key-path, path),
// restores with ours from that same config file.
func TestV03InteropSFTP(t *testing.T) {
	v03 := v03Binary(t)
	srv := sftptest.StartServer(t)

	t.Run("ours to v0.3", func(t *testing.T) {
		home := sftptest.EnsurePasswordUser(t)
		u := sftpPasswordURL(srv, filepath.Join(home, "app"))
		dir := t.TempDir()
		dbPath := filepath.Join(dir, "app.db")
		n := replicateOurs(t, dir, dbPath, fmt.Sprintf("      - url: %s\n        sync-interval: 100ms\n", u))
		restoreWith(t, v03, n, u)
		restoreWith(t, bin.Litestream, n, u)
	})

	t.Run("v0.3 to ours", func(t *testing.T) {
		dir := t.TempDir()
		dbPath := filepath.Join(dir, "app.db")
		cfg := filepath.Join(dir, "v03.yml")
		writeFile(t, cfg, fmt.Sprintf("dbs:\n  - path: %s\n    monitor-interval: 50ms\n    min-checkpoint-page-count: 40\n    replicas:\n      - type: sftp\n        host: %s\n        user: %s\n        key-path: %s\n        path: %s\n        sync-interval: 100ms\n",
			dbPath, srv.Addr, srv.User, srv.ClientKeyPath, srv.NewDir(t)))
		_, n := replicateV03(t, v03, cfg, dbPath)
		requireRestored(t, dbPath, n, 0, "-config", cfg, dbPath)
	})
}
