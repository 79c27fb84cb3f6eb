package e2e

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/litestream-go/litestream/internal/abstest"
)

// absReplica is a replica block for a container of srv, in our keys: the
// URL, then the endpoint.
func absReplica(srv *abstest.Server, container, interval string) string {
	return fmt.Sprintf("      - name: abs\n        url: abs://%s@%s/app\n        endpoint: %s\n        sync-interval: %s\n",
		abstest.AccountName, container, srv.Endpoint(), interval)
}

// absURL is the replica URL of a container of srv, endpoint included.
func absURL(srv *abstest.Server, container string) string {
	return fmt.Sprintf("abs://%s@%s/app?endpoint=%s", abstest.AccountName, container, url.QueryEscape(srv.Endpoint()))
}

// useABSKey gives the litestream processes the development account's key
// by the variable both v0.3 and we read.
func useABSKey(t *testing.T) { t.Setenv("LITESTREAM_AZURE_ACCOUNT_KEY", abstest.AccountKey) }

// TestABSReplicateRestore replicates a live database, with one transaction
// larger than several upload blocks, to Azurite, and restores it from the
// abs:// URL holding exactly the committed transactions, in one
// generation; the application's database is intact.
func TestABSReplicateRestore(t *testing.T) {
	srv := abstest.StartServer(t)
	container := srv.CreateContainer(t)
	useABSKey(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	cfg := writeConfig(t, dir, dbPath, absReplica(srv, container, "200ms"))
	rep, n := replicateWithWriter(t, cfg, dbPath, time.Second, "-n", "1500", "-rows", "5", "-size", "2000", "-big", fmt.Sprint(12<<20), "-every", "1ms")
	if !strings.Contains(rep.Output(), "type=abs") || strings.Contains(rep.Output(), abstest.AccountKey) {
		t.Fatalf("the startup line does not name the abs replica, or shows the key:\n%s", rep.Output())
	}
	requireRestored(t, dbPath, n, 1, absURL(srv, container))
}

// TestABSReplicateRestoreWithOutage stops Azurite for 30 seconds under a
// write load and starts it again on the same port with the same data: the
// restore holds every committed transaction, in one generation.
func TestABSReplicateRestoreWithOutage(t *testing.T) {
	srv := abstest.StartServer(t)
	container := srv.CreateContainer(t)
	useABSKey(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	cfg := writeConfig(t, dir, dbPath, absReplica(srv, container, "200ms"))
	rep, n := replicateThroughOutage(t, cfg, dbPath, srv)
	// An outage is told in our words, naming the endpoint, not the SDK's.
	// One the requests' retries (about 30 s of backoff) outlast is not
	// told at all.
	out := rep.Output()
	if strings.Contains(out, abstest.AccountKey) || strings.Contains(out, "RESPONSE") || strings.Contains(out, "x-ms-request-id") ||
		strings.Contains(out, "level=ERROR") && !strings.Contains(out, "cannot reach the Azure Blob Storage endpoint "+srv.Endpoint()) {
		t.Fatalf("the log shows the key, or does not tell the outage in our words:\n%s", out)
	}
	t.Logf("the outage in the log: %d ERROR, %d WARN lines", strings.Count(out, "level=ERROR"), strings.Count(out, "level=WARN"))
	requireRestored(t, dbPath, n, 1, absURL(srv, container))
}

// v03ABSConfig writes a config file in v0.3's own keys for one database
// with an abs replica of srv, and returns its path.
func v03ABSConfig(t *testing.T, dir, dbPath string, srv *abstest.Server, container string) string {
	cfg := filepath.Join(dir, "v03.yml")
	writeFile(t, cfg, fmt.Sprintf(`dbs:
  - path: %s
    monitor-interval: 50ms
    min-checkpoint-page-count: 40
    replicas:
      - type: abs
        account-name: %s
        account-key: %s
        bucket: %s
        path: app
        endpoint: %s
        sync-interval: 100ms
`, dbPath, abstest.AccountName, abstest.AccountKey, container, srv.Endpoint()))
	return cfg
}

// TestV03InteropABS: a replica we write to Azurite restores with Litestream
// v0.3.13, and one v0.3.13 writes restores with ours, each holding exactly
// the committed transactions. v0.3 has no way to name an endpoint in a
// URL, so it restores through its config file (LITESTREAM_CONFIG, which
// both read).
func TestV03InteropABS(t *testing.T) {
	v03 := v03Binary(t)
	srv := abstest.StartServer(t)
	t.Setenv("LITESTREAM_AZURE_ACCOUNT_KEY", "")

	t.Run("ours to v0.3", func(t *testing.T) {
		container := srv.CreateContainer(t)
		dir := t.TempDir()
		dbPath := filepath.Join(dir, "app.db")
		n := replicateOurs(t, dir, dbPath, fmt.Sprintf(
			"      - url: abs://%s@%s/app\n        account-key: %s\n        endpoint: %s\n        sync-interval: 100ms\n",
			abstest.AccountName, container, abstest.AccountKey, srv.Endpoint()))
		t.Setenv("LITESTREAM_CONFIG", v03ABSConfig(t, dir, dbPath, srv, container))
		restoreWith(t, v03, n, dbPath)
	})

	t.Run("v0.3 to ours", func(t *testing.T) {
		container := srv.CreateContainer(t)
		dir := t.TempDir()
		dbPath := filepath.Join(dir, "app.db")
		cfg := v03ABSConfig(t, dir, dbPath, srv, container)
		rep, n := replicateV03(t, v03, cfg, dbPath)
		if strings.Contains(rep.Output(), "ERROR") || strings.Contains(rep.Output(), "error") {
			t.Logf("v0.3's log:\n%s", rep.Output())
		}
		restoreAndVerify(t, n, "-config", cfg, dbPath)
		useABSKey(t)
		requireRestored(t, dbPath, n, 0, absURL(srv, container))
	})
}
