package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "1500", "-rows", "5", "-size", "2000", "-big", fmt.Sprint(12<<20), "-every", "1ms")
	if code := w.Wait(3 * time.Minute); code != 0 {
		t.Fatalf("writer exited %d", code)
	}
	time.Sleep(time.Second)
	stopReplicate(t, rep)
	if !strings.Contains(rep.Output(), "type=sftp") || strings.Contains(rep.Output(), sftptest.Password) {
		t.Fatalf("the startup line does not name the sftp replica, or shows the password:\n%s", rep.Output())
	}
	restoreAndVerify(t, w.LastCommitted(), u)
	if n := generationCount(t, u); n != 1 {
		t.Fatalf("%d generations", n)
	}
	requireLive(t, dbPath, w.LastCommitted())
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
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "0", "-rows", "3", "-size", "1500", "-every", "5ms")
	WaitFor(t, 30*time.Second, "first snapshot", func() bool { return strings.Contains(rep.Output(), "snapshot written") })
	time.Sleep(time.Second)

	outage := 30 * time.Second
	if testing.Short() {
		outage = 5 * time.Second
	}
	srv.Stop()
	before := w.LastCommitted()
	time.Sleep(outage)
	if w.Exited() || w.LastCommitted() <= before {
		t.Fatalf("the application stopped writing during the outage (%d -> %d)", before, w.LastCommitted())
	}
	srv.Start()
	time.Sleep(3 * time.Second)
	w.Signal(syscall.SIGINT)
	w.Wait(time.Minute)
	stopReplicate(t, rep)
	if strings.Count(rep.Output(), "new generation") != 1 {
		t.Fatalf("the outage started a new generation:\n%s", rep.Output())
	}
	restoreAndVerify(t, w.LastCommitted(), "-config", cfg, dbPath)
	stdout, stderr, code := Run(context.Background(), bin.Litestream, "generations", "-config", cfg, dbPath)
	if code != 0 || len(strings.Split(strings.TrimSpace(stdout), "\n")) != 2 {
		t.Fatalf("generations: exit %d\n%s%s", code, stdout, stderr)
	}
	requireLive(t, dbPath, w.LastCommitted())
}

// TestV03InteropSFTP: a replica we write to sshd restores with Litestream
// v0.3.13 (from the sftp:// URL with a password), and one v0.3.13 writes,
// configured with its own keys (type, host, user, key-path, path),
// restores with ours from that same config file.
func TestV03InteropSFTP(t *testing.T) {
	v03 := os.Getenv("LITESTREAM_V03")
	if v03 == "" {
		t.Skip("LITESTREAM_V03 is not set: `make test` builds Litestream v0.3.13 into ./bin and runs this test against it")
	}
	if _, err := os.Stat(v03); err != nil {
		t.Fatalf("LITESTREAM_V03: %v", err)
	}
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
		rep := Start(t, v03, "replicate", "-config", cfg)
		w := Start(t, bin.Writer, "-db", dbPath, "-n", "600", "-rows", "4", "-size", "700", "-every", "2ms")
		w.Wait(2 * time.Minute)
		// v0.3 ships on its own schedule: give it a few sync intervals.
		time.Sleep(3 * time.Second)
		rep.Signal(syscall.SIGINT)
		rep.Wait(time.Minute)
		restoreAndVerify(t, w.LastCommitted(), "-config", cfg, dbPath)
		requireLive(t, dbPath, w.LastCommitted())
	})
}
