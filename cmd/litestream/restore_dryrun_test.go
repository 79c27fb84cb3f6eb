package main

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// twoReplicaSource is a database with two directory replicas, local and
// other, both holding 30 commits in several segments.
func twoReplicaSource(t *testing.T) (cfg, dbPath string, src *source) {
	t.Helper()
	dir := t.TempDir()
	dbPath = filepath.Join(dir, "app.db")
	cfg = writeConfig(t, dbPath, "      - name: local\n        path: "+filepath.Join(dir, "local")+"\n      - name: other\n        path: "+filepath.Join(dir, "other")+"\n")
	src = openSource(t, cfg, dbPath)
	for i := 0; i < 3; i++ {
		src.commit(10)
		src.sync("local", "other")
	}
	return cfg, dbPath, src
}

var hex8 = regexp.MustCompile(`^[0-9a-f]{8,16}$`)

// TestRestoreDryRun: -dry-run prints the plan and writes nothing; with
// -json, one object; beside an existing output with -if-db-not-exists it
// says nothing would be restored.
func TestRestoreDryRun(t *testing.T) {
	cfg, dbPath, src := twoReplicaSource(t)
	gen := src.replica("local").Pos().Generation
	outDir := filepath.Join(t.TempDir(), "not-yet")
	out := filepath.Join(outDir, "restored.db")

	r := runCmd("restore", "-config", cfg, "-dry-run", "-o", out, dbPath)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"dry run: nothing written\n", "replica:     local (file)\n", "generation:  " + gen + "\n",
		"snapshot:    00000000.snapshot.lz4, ", "segments:    3, ", "index 00000000: 3, ", "position:    " + gen + "/00000000:",
		"time:        20", "check:       quick\n", "chose:       local (file, ", "fallback:    other (file), reaches 00000000:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry run does not say %q:\n%s", want, r.stdout)
		}
	}
	if _, err := os.Lstat(outDir); !os.IsNotExist(err) {
		t.Fatalf("a dry run created %s (%v)", outDir, err)
	}

	r = runCmd("restore", "-config", cfg, "-dry-run", "-json", "-integrity-check", "full", "-o", out, dbPath)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("-json: exit %d, stderr %q", r.code, r.stderr)
	}
	var j struct {
		Output       string `json:"output"`
		WouldRestore bool   `json:"would_restore"`
		Replica      string `json:"replica"`
		Generation   string `json:"generation"`
		Snapshot     struct {
			Index string `json:"index"`
			Size  int64  `json:"size"`
		} `json:"snapshot"`
		SegmentCount int   `json:"segment_count"`
		SegmentBytes int64 `json:"segment_bytes"`
		StoredBytes  int64 `json:"stored_bytes"`
		Segments     []struct {
			Index, Offset string
			Size          int64
		} `json:"segments"`
		Position struct {
			Generation, Index, Offset string
		} `json:"position"`
		Time           string `json:"time"`
		IntegrityCheck string `json:"integrity_check"`
		Fallbacks      []struct {
			Replica string `json:"replica"`
		} `json:"fallbacks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, r.stdout)
	}
	var sum int64
	for _, s := range j.Segments {
		sum += s.Size
		if !hex8.MatchString(s.Index) || !hex8.MatchString(s.Offset) {
			t.Errorf("segment index/offset not hex strings: %+v", s)
		}
	}
	if !j.WouldRestore || j.Output != out || j.Replica != "local" || j.Generation != gen || j.Snapshot.Index != "00000000" ||
		j.SegmentCount != 3 || len(j.Segments) != 3 || sum != j.SegmentBytes || j.StoredBytes != j.Snapshot.Size+sum ||
		j.Position.Generation != gen || !hex8.MatchString(j.Position.Offset) || j.Time == "" || j.IntegrityCheck != "full" ||
		len(j.Fallbacks) != 1 || j.Fallbacks[0].Replica != "other" {
		t.Fatalf("plan: %+v\n%s", j, r.stdout)
	}
	if _, err := os.Lstat(outDir); !os.IsNotExist(err) {
		t.Fatalf("a dry run created %s", outDir)
	}

	// -replica pins: no fallback.
	r = runCmd("restore", "-config", cfg, "-dry-run", "-replica", "other", "-o", out, dbPath)
	if r.code != 0 || !strings.Contains(r.stdout, "replica:     other (file)") || strings.Contains(r.stdout, "fallback:") || strings.Contains(r.stdout, "chose:") {
		t.Fatalf("-replica other: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The output exists.
	existing := filepath.Join(t.TempDir(), "app.db")
	if err := os.WriteFile(existing, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCmd("restore", "-config", cfg, "-dry-run", "-if-db-not-exists", "-o", existing, dbPath)
	if r.code != 0 || r.stdout != "dry run: "+existing+" already exists; nothing would be restored (-if-db-not-exists)\n" {
		t.Fatalf("-if-db-not-exists: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCmd("restore", "-config", cfg, "-dry-run", "-json", "-if-db-not-exists", "-o", existing, dbPath)
	if r.code != 0 || !strings.Contains(r.stdout, `"would_restore": false`) || !strings.Contains(r.stdout, "nothing would be restored") {
		t.Fatalf("-json -if-db-not-exists: exit %d, stdout %q", r.code, r.stdout)
	}
	requireFailure(t, runCmd("restore", "-config", cfg, "-dry-run", "-o", existing, dbPath), "already exists")
	if b, _ := os.ReadFile(existing); string(b) != "mine" {
		t.Fatal("the existing output was touched")
	}

	// An empty replica with -if-replica-exists.
	r = runCmd("restore", "-dry-run", "-if-replica-exists", "-o", out, t.TempDir())
	if r.code != 0 || !strings.HasPrefix(r.stdout, "dry run: no backup found; nothing would be restored (-if-replica-exists)") {
		t.Fatalf("-if-replica-exists: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestRestoreFlags_BadInput: each bad flag value is one line and exit 1,
// and every flag has -h text.
func TestRestoreFlags_BadInput(t *testing.T) {
	replica := "file://" + filepath.Join(t.TempDir(), "replica") // never read
	out := filepath.Join(t.TempDir(), "out.db")
	requireFailure(t, runCmd("restore", "-json", "-o", out, replica), "-json prints the plan of a dry run: give -dry-run too")
	requireFailure(t, runCmd("restore", "-integrity-check", "fast", "-o", out, replica), `-integrity-check "fast": give none, quick or full`)
	requireFailure(t, runCmd("restore", "-integrity-check", "", "-o", out, replica), "give none, quick or full")

	r := runCmd("restore", "-h")
	for _, f := range []string{"-dry-run", "-json", "-integrity-check"} {
		if !strings.Contains(r.stdout+r.stderr, "  "+f) {
			t.Errorf("restore -h has no text for %s:\n%s%s", f, r.stdout, r.stderr)
		}
	}
	for _, cmd := range []string{"generations", "snapshots", "wal", "databases"} {
		r := runCmd(cmd, "-h")
		if !strings.Contains(r.stdout+r.stderr, "  -json") {
			t.Errorf("%s -h has no text for -json:\n%s%s", cmd, r.stdout, r.stderr)
		}
	}
}

// TestListings_JSON: generations, snapshots, wal and databases print a
// JSON array with -json, indexes and offsets as the table's hex strings.
func TestListings_JSON(t *testing.T) {
	cfg, dbPath, src := twoReplicaSource(t)
	gen := src.replica("local").Pos().Generation

	var gens []map[string]any
	listJSON(t, &gens, "generations", "-config", cfg, dbPath)
	if len(gens) != 2 || gens[0]["replica"] != "local" || gens[1]["replica"] != "other" || gens[0]["generation"] != gen ||
		gens[0]["start"] == nil || gens[0]["end"] == nil || gens[0]["lag_seconds"] == nil {
		t.Fatalf("generations: %v", gens)
	}

	var snaps []map[string]any
	listJSON(t, &snaps, "snapshots", "-config", cfg, "-replica", "other", dbPath)
	if len(snaps) != 1 || snaps[0]["replica"] != "other" || snaps[0]["index"] != "00000000" || snaps[0]["size"].(float64) <= 0 {
		t.Fatalf("snapshots: %v", snaps)
	}

	var segs []map[string]any
	listJSON(t, &segs, "wal", "-config", cfg, "-generation", gen, "-replica", "local", dbPath)
	table := runCmd("wal", "-config", cfg, "-generation", gen, "-replica", "local", dbPath)
	rows := strings.Split(strings.TrimSpace(table.stdout), "\n")[1:]
	if len(segs) != 3 || len(rows) != 3 {
		t.Fatalf("wal: %d objects, %d rows", len(segs), len(rows))
	}
	for i, s := range segs {
		f := strings.Fields(rows[i])
		if s["index"] != f[2] || s["offset"] != f[3] || !hex8.MatchString(s["offset"].(string)) || s["created"] != f[5] {
			t.Errorf("wal object %v differs from the row %q", s, rows[i])
		}
	}

	var dbs []struct {
		Path     string   `json:"path"`
		Replicas []string `json:"replicas"`
	}
	listJSON(t, &dbs, "databases", "-config", cfg)
	if len(dbs) != 1 || dbs[0].Path != dbPath || strings.Join(dbs[0].Replicas, ",") != "local,other" {
		t.Fatalf("databases: %+v", dbs)
	}

	// Nothing to list is an empty array.
	var none []any
	listJSON(t, &none, "snapshots", t.TempDir())
	if none == nil || len(none) != 0 {
		t.Fatalf("empty replica: %v", none)
	}
}

// listJSON runs a listing command and decodes its stdout into v.
func listJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	r := runCmd(append([]string{args[0], "-json"}, args[1:]...)...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("%v: not JSON: %v\n%s", args, err, r.stdout)
	}
}

// TestRestoreIntegrityCheck, with the built binary: a snapshot whose index
// disagrees with its table passes quick_check and fails integrity_check
// (-integrity-check full), in one line with the count of problems and the
// first few, leaving nothing; one with a damaged b-tree page fails the
// default quick check the same way; -integrity-check none restores it.
func TestRestoreIntegrityCheck(t *testing.T) {
	bin, _ := buildLitestream(t)

	// An index on y, whose entries were made for x.
	h := newHostileReplica(t)
	path := filepath.Join(t.TempDir(), "idx.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE TABLE t (x TEXT, y TEXT)", "CREATE INDEX ti ON t (x)",
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) INSERT INTO t SELECT 'x' || i, 'y' || i FROM n",
		"PRAGMA writable_schema=ON", "UPDATE sqlite_schema SET sql = 'CREATE INDEX ti ON t (y)' WHERE name = 'ti'"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h.put("snapshots/00000000.snapshot.lz4", encodeLZ4(t, raw, -1))
	outDir := t.TempDir()
	if r := runCLI(t, bin, outDir, "restore", "-o", filepath.Join(outDir, "quick.db"), h.dir); r.code != 0 {
		t.Fatalf("quick: exit %d: %s", r.code, r.stderr)
	}
	r := runCLI(t, bin, t.TempDir(), "restore", "-integrity-check", "full", "-o", filepath.Join(t.TempDir(), "full.db"), h.dir)
	requireCheckFailure(t, r, "PRAGMA integrity_check found ")

	// A damaged leaf page (its cell pointers).
	h = newHostileReplica(t)
	damaged := h.page(2)
	for i := 8; i < 16; i++ {
		damaged[i] = 0xff
	}
	db2 := append(append(h.page(1), damaged...), h.db[2*h.pageSize:]...)
	h.put("snapshots/00000000.snapshot.lz4", encodeLZ4(t, db2, -1))
	r = runCLI(t, bin, t.TempDir(), "restore", "-o", filepath.Join(t.TempDir(), "out.db"), h.dir)
	requireCheckFailure(t, r, "PRAGMA quick_check found ")
	out := filepath.Join(t.TempDir(), "none.db")
	if r := runCLI(t, bin, t.TempDir(), "restore", "-integrity-check", "none", "-o", out, h.dir); r.code != 0 {
		t.Fatalf("none: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
}

var checkLine = regexp.MustCompile(`: PRAGMA \w+ found (\d+ problems?( or more)?): (.+)$`)

// requireCheckFailure requires a failed check summarised in one short
// line.
func requireCheckFailure(t *testing.T, r cliResult, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if r.code != 1 || !strings.Contains(last, want) || !checkLine.MatchString(last) || len(last) > 1000 {
		t.Fatalf("exit %d, want one summary line with %q; stderr:\n%s", r.code, want, r.stderr)
	}
}
