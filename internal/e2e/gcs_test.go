package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litestream-go/litestream/internal/gcstest"
)

// useGCSEmulator points the litestream processes the test starts at srv,
// with no Google credentials of the environment: the emulator needs none.
func useGCSEmulator(t *testing.T, srv *gcstest.Server) {
	srv.UseEmulator(t)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
}

// TestGCSReplicateRestore replicates a database a separate writer process
// commits to, through the real binary, to a real GCS emulator, and
// restores it from the gcs:// URL with every committed transaction; the
// application's own database is intact.
func TestGCSReplicateRestore(t *testing.T) {
	srv := gcstest.StartServer(t)
	bucket := srv.CreateBucket(t)
	useGCSEmulator(t, srv)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	n := replicateOurs(t, dir, dbPath, fmt.Sprintf("      - name: gcs\n        url: gcs://%s/app\n        sync-interval: 100ms\n", bucket))
	restoreAndVerify(t, n, "gcs://"+bucket+"/app")
	// And from the config file, by database path.
	restoreAndVerify(t, n, "-config", filepath.Join(dir, "litestream.yml"), dbPath)
	if g := generationCount(t, "gcs://"+bucket+"/app"); g != 1 {
		t.Fatalf("%d generations", g)
	}
}

// TestGCSReplicateRestoreWithOutage stops the emulator for 30 seconds
// under a write load and starts it again on the same port with the same
// data: the restore holds every committed transaction, in one generation.
func TestGCSReplicateRestoreWithOutage(t *testing.T) {
	srv := gcstest.StartFilesystemServer(t)
	bucket := srv.CreateBucket(t)
	useGCSEmulator(t, srv)

	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	cfg := writeConfig(t, dir, dbPath, fmt.Sprintf(
		"      - name: gcs\n        type: gcs\n        bucket: %s\n        path: app\n        sync-interval: 200ms\n", bucket))
	_, n := replicateThroughOutage(t, cfg, dbPath, srv)
	requireRestored(t, dbPath, n, 1, "gcs://"+bucket+"/app")
}

// TestV03InteropGCS: a GCS replica this engine writes restores with
// Litestream v0.3.13, and one v0.3.13 writes (configured with its own
// keys: type gcs, bucket, path) restores with ours, each holding exactly
// the committed transactions. Both reach the emulator through
// STORAGE_EMULATOR_HOST, which their storage libraries read.
func TestV03InteropGCS(t *testing.T) {
	v03 := v03Binary(t)
	srv := gcstest.StartServer(t)
	useGCSEmulator(t, srv)

	t.Run("ours to v0.3", func(t *testing.T) {
		bucket := srv.CreateBucket(t)
		dir := t.TempDir()
		dbPath := filepath.Join(dir, "app.db")
		n := replicateOurs(t, dir, dbPath, fmt.Sprintf("      - name: gcs\n        url: gcs://%s/app\n        sync-interval: 100ms\n", bucket))
		restoreWith(t, v03, n, "gcs://"+bucket+"/app")
	})

	for _, prefix := range []string{"app", "/slashed/app"} {
		t.Run("v0.3 to ours, path "+prefix, func(t *testing.T) { v03ToOursGCS(t, v03, srv, prefix) })
	}
}

// v03ToOursGCS has v0.3 replicate a database to a fresh bucket under
// prefix (its config's path: v0.3 keeps a leading slash in the object
// names) and restores it with ours, from the same config and, for a
// prefix without a leading slash, from the URL.
func v03ToOursGCS(t *testing.T, v03 string, srv *gcstest.Server, prefix string) {
	bucket := srv.CreateBucket(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	cfg := filepath.Join(dir, "v03.yml")
	writeFile(t, cfg, fmt.Sprintf("dbs:\n  - path: %s\n    monitor-interval: 50ms\n    min-checkpoint-page-count: 40\n    replicas:\n      - type: gcs\n        bucket: %s\n        path: %s\n        sync-interval: 100ms\n", dbPath, bucket, prefix))
	_, n := replicateV03(t, v03, cfg, dbPath)
	names := srv.ObjectNames(t, bucket)
	if len(names) == 0 || !strings.HasPrefix(names[0], prefix+"/generations/") {
		t.Fatalf("v0.3 wrote %v, want names under %s/generations/", names, prefix)
	}
	if !strings.HasPrefix(prefix, "/") {
		restoreAndVerify(t, n, "gcs://"+bucket+"/"+prefix)
	}
	// Our config, with v0.3's keys, reads it.
	requireRestored(t, dbPath, n, 0, "-config", cfg, dbPath)
}
