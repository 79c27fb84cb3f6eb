package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// smallReplica writes n one-row transactions to a database replicated to
// a file replica and returns the replica's directory.
func smallReplica(t *testing.T, n int) string {
	t.Helper()
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	db, r := newTestDB(t, path, replicaDir)
	commitRows(t, w, n)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return replicaDir
}

// restoreTo plans and runs a restore of the replica in dir to out.
func restoreTo(t *testing.T, dir, out string) error {
	t.Helper()
	ctx := context.Background()
	r := litestream.NewReplica("file", file.NewReplicaClient(dir))
	opt := latest()
	opt.Logger = testLogger(t)
	plan, err := litestream.PlanRestore(ctx, []*litestream.Replica{r}, opt)
	if err != nil {
		t.Fatal(err)
	}
	return litestream.Restore(ctx, plan, out, opt)
}

// otherDatabaseWAL returns the -wal file of another WAL-mode database, with
// rows committed in it that no checkpoint has moved into its file.
func otherDatabaseWAL(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		"CREATE TABLE other (id INTEGER PRIMARY KEY, v BLOB)",
		"INSERT INTO other (v) SELECT randomblob(3000) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 50) SELECT x FROM c)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path + "-wal")
	if err != nil || len(b) == 0 {
		t.Fatalf("no WAL for the other database (%d bytes): %v", len(b), err)
	}
	return b
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestRestore_BesideOtherDatabasesFiles: another database's -wal (and
// -shm, -journal) beside the output would be applied to the restored file
// when SQLite first opens it. Restore refuses before doing any work, or,
// when they come during the restore, before the final rename; it names
// them, and leaves nothing at the output.
func TestRestore_BesideOtherDatabasesFiles(t *testing.T) {
	replicaDir := smallReplica(t, 20)
	wal := otherDatabaseWAL(t)

	t.Run("wal before the restore", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.db")
		if err := os.WriteFile(out+"-wal", wal, 0o644); err != nil {
			t.Fatal(err)
		}
		err := restoreTo(t, replicaDir, out)
		if err == nil || !strings.Contains(err.Error(), out+"-wal exists beside the output") || !strings.Contains(err.Error(), "move it away") {
			t.Fatalf("err = %v, want the -wal named", err)
		}
		if names := dirNames(t, dir); len(names) != 1 || names[0] != "out.db-wal" {
			t.Fatalf("files beside the output after the refusal: %v", names)
		}
	})
	t.Run("all three", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out.db")
		for _, s := range []string{"-wal", "-shm", "-journal"} {
			if err := os.WriteFile(out+s, wal, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		err := litestream.CheckRestoreOutput(out)
		want := out + "-wal, " + out + "-shm and " + out + "-journal exist beside the output"
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "move them away") {
			t.Fatalf("err = %v, want %q", err, want)
		}
	})
	t.Run("wal during the restore", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.db")
		litestream.SetBeforeMoveIntoPlace(t, func(string) {
			if err := os.WriteFile(out+"-wal", wal, 0o644); err != nil {
				t.Error(err)
			}
		})
		err := restoreTo(t, replicaDir, out)
		if err == nil || !strings.Contains(err.Error(), out+"-wal exists beside the output") {
			t.Fatalf("err = %v, want the -wal named", err)
		}
		if names := dirNames(t, dir); len(names) != 1 || names[0] != "out.db-wal" {
			t.Fatalf("files beside the output after the refusal: %v", names)
		}
	})
}

// TestRestore_OutputAppearsDuringRestore: a file created at the output
// path while a restore runs (just before its final rename) is never
// replaced; the restore fails saying so and leaves no temporary file.
func TestRestore_OutputAppearsDuringRestore(t *testing.T) {
	replicaDir := smallReplica(t, 20)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.db")
	litestream.SetBeforeMoveIntoPlace(t, func(string) {
		if err := os.WriteFile(out, []byte("precious"), 0o644); err != nil {
			t.Error(err)
		}
	})
	err := restoreTo(t, replicaDir, out)
	if !errors.Is(err, litestream.ErrOutputExists) || !strings.Contains(err.Error(), out+" appeared while restoring") {
		t.Fatalf("err = %v, want the output named as appeared", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "precious" {
		t.Fatalf("the file that appeared at the output was replaced (%d bytes)", len(b))
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Fatalf("left beside the output: %v", names)
	}
}

// TestRestore_Output: the normal case, with nothing at or beside the
// output: a complete database, checked by SQLite, and nothing else.
func TestRestore_Output(t *testing.T) {
	replicaDir := smallReplica(t, 20)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.db")
	if err := restoreTo(t, replicaDir, out); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "out.db" {
		t.Fatalf("files beside the output: %v", names)
	}
	m, err := sqlwriter.Verify(context.Background(), out) // PRAGMA integrity_check, then every row
	if err != nil || m != 20 {
		t.Fatalf("restored %d transactions (%v), want 20", m, err)
	}
	db, err := sql.Open("sqlite", "file:"+out+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 20 {
		t.Fatalf("%d rows (%v), want 20", n, err)
	}
}
