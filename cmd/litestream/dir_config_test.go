package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litestream-go/litestream/abs"
	"github.com/litestream-go/litestream/file"
	"github.com/litestream-go/litestream/gcs"
	s3pkg "github.com/litestream-go/litestream/s3"
	"github.com/litestream-go/litestream/sftp"
)

// TestParseConfig_DirEntry: a directory entry loads with its keys, is
// moved out of DBs into Dirs, and keeps its replicas as a template.
func TestParseConfig_DirEntry(t *testing.T) {
	src := "dbs:\n  - path: /srv/app.db\n    replicas:\n      - path: /b/app\n" +
		"  - dir: /data/tenants/\n    pattern: \"*.db\"\n    recursive: true\n    watch: true\n    monitor-interval: 2s\n    replicas:\n      - url: s3://bkt/tenants\n      - path: /b/tenants\n"
	cfg, err := ParseConfig([]byte(src), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.DBs) != 1 || cfg.DBs[0].Path != "/srv/app.db" {
		t.Fatalf("DBs = %+v", cfg.DBs)
	}
	if len(cfg.Dirs) != 1 {
		t.Fatalf("Dirs = %+v", cfg.Dirs)
	}
	d := cfg.Dirs[0]
	if d.Dir != "/data/tenants" || d.Pattern != "*.db" || !d.Recursive || !d.Watch || d.Line != 5 || d.Path != "" {
		t.Fatalf("dir entry = %+v", d)
	}
	if len(d.Replicas) != 2 || d.Replicas[0].Name != "s3" || d.Replicas[1].Name != "file" || d.Replicas[1].Line != 12 {
		t.Fatalf("replicas = %+v %+v", d.Replicas[0], d.Replicas[1])
	}
	dbc, err := d.dbConfigFor("/data/tenants/a/b.db")
	if err != nil {
		t.Fatal(err)
	}
	if dbc.Path != "/data/tenants/a/b.db" || dbc.Dir != "" || dbc.MetaPath != "" || dbc.MonitorInterval.D(0).String() != "2s" {
		t.Fatalf("database config = %+v", dbc)
	}
	if dbc.Replicas[0].URL != "s3://bkt/tenants/a/b.db" || dbc.Replicas[1].Path != "/b/tenants/a/b.db" {
		t.Fatalf("replicas = %q, %q", dbc.Replicas[0].URL, dbc.Replicas[1].Path)
	}
	if d.Replicas[0].URL != "s3://bkt/tenants" || d.Replicas[1].Path != "/b/tenants" {
		t.Fatal("the template changed")
	}
	db, err := newDBFromConfig(dbc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if db.MetaPath() != "/data/tenants/a/.b.db-litestream" {
		t.Fatalf("meta path = %s", db.MetaPath())
	}
	if got := s3ClientOf(t, dbc.Replicas[0]).Path; got != "tenants/a/b.db" {
		t.Fatalf("s3 key prefix = %q", got)
	}
}

// TestParseConfig_DirEntryErrors: every bad directory entry is one line
// that names its line, and the other entry's line where two meet.
func TestParseConfig_DirEntryErrors(t *testing.T) {
	rep := "    replicas:\n      - path: /b/x\n"
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"dir and path", "dbs:\n  - dir: /d\n    path: /d/a.db\n    pattern: \"*.db\"\n", []string{"line 2:", "either path", "not both"}},
		{"no pattern", "dbs:\n  - dir: /d\n", []string{"line 2:", "no pattern"}},
		{"bad pattern", "dbs:\n  - dir: /d\n    pattern: \"[a-\"\n", []string{"line 2:", `pattern "[a-"`, "not a valid pattern"}},
		{"pattern with a slash", "dbs:\n  - dir: /d\n    pattern: \"x/*.db\"\n", []string{"line 2:", "cannot hold a slash", "recursive"}},
		{"pattern without dir", "dbs:\n  - path: /d/a.db\n    pattern: \"*.db\"\n", []string{"line 2:", "give dir:"}},
		{"watch without dir", "dbs:\n  - path: /d/a.db\n    watch: true\n", []string{"line 2:", "directory entry"}},
		{"meta-path", "dbs:\n  - dir: /d\n    pattern: \"*.db\"\n    meta-path: /m\n", []string{"line 2:", "meta-path does not apply"}},
		{"restore-if-db-not-exists", "dbs:\n  - dir: /d\n    pattern: \"*.db\"\n    restore-if-db-not-exists: true\n", []string{"line 2:", "restore-if-db-not-exists"}},
		{"path entry inside", "dbs:\n  - dir: /d\n    pattern: \"*.db\"\n" + rep + "  - path: /d/a.db\n    replicas:\n      - path: /c\n",
			[]string{"line 6:", "/d/a.db", "line 2", "one entry"}},
		{"path entry deep inside, recursive", "dbs:\n  - path: /d/x/y/a.db\n    replicas:\n      - path: /c\n  - dir: /d\n    pattern: \"*.db\"\n    recursive: true\n" + rep,
			[]string{"line 2:", "line 5"}},
		{"two entries, one dir", "dbs:\n  - dir: /d\n    pattern: \"*.db\"\n" + rep + "  - dir: /d/\n    pattern: \"*.db\"\n    replicas:\n      - path: /b/y\n",
			[]string{"line 6:", "line 2", "same databases"}},
		{"two entries, nested, recursive", "dbs:\n  - dir: /d\n    pattern: \"*.db\"\n    recursive: true\n" + rep + "  - dir: /d/sub\n    pattern: \"*.db\"\n    replicas:\n      - path: /b/y\n",
			[]string{"line 7:", "line 2"}},
		{"two entries, one replica root", "dbs:\n  - dir: /d\n    pattern: \"*.db\"\n" + rep + "  - dir: /e\n    pattern: \"*.db\"\n" + rep,
			[]string{"line 9:", "writes to /b/x", "line 5"}},
		{"path entry's replica under a dir entry's", "dbs:\n  - dir: /d\n    pattern: \"*.db\"\n" + rep + "  - path: /e/a.db\n    replicas:\n      - path: /b/x/a.db\n",
			[]string{"line 5:", "which holds /b/x/a.db", "line 8"}},
		{"heartbeat interval too short", "heartbeat-url: https://hc.example/ping/x\nheartbeat-interval: 30s\n", []string{"heartbeat-interval 30s", "at least 1m"}},
		{"heartbeat url not http", "heartbeat-url: ftp://hc.example/x?token=SECRET\n", []string{"heartbeat-url ftp://hc.example/x", "http://"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.src), true)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error spans several lines or shows a secret: %q", err)
			}
		})
	}
}

// TestParseConfig_DirEntryAccepted: entries that only look alike load: one
// dir with two patterns, nested dirs without recursive, a path entry
// beside a dir entry's reach.
func TestParseConfig_DirEntryAccepted(t *testing.T) {
	for _, src := range []string{
		"dbs:\n  - dir: /d\n    pattern: \"*.db\"\n    replicas:\n      - path: /b/x\n  - dir: /d\n    pattern: \"*.sqlite\"\n    replicas:\n      - path: /b/y\n",
		"dbs:\n  - dir: /d\n    pattern: \"*.db\"\n    replicas:\n      - path: /b/x\n  - dir: /d/sub\n    pattern: \"*.db\"\n    replicas:\n      - path: /b/y\n",
		"dbs:\n  - dir: /d\n    pattern: \"*.db\"\n    replicas:\n      - path: /b/x\n  - path: /d/sub/a.db\n    replicas:\n      - path: /b/y\n",
		"dbs:\n  - dir: /d\n    pattern: \"*.db\"\n    replicas:\n      - path: /b/x\n  - path: /d/a.sqlite\n    replicas:\n      - path: /b/y\n",
		"heartbeat-url: https://user:pw@hc.example/ping/x?k=v\nheartbeat-interval: 1m\n",
	} {
		if _, err := ParseConfig([]byte(src), true); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}

// TestDirEntryRelPath: what a directory entry covers, and what it refuses.
func TestDirEntryRelPath(t *testing.T) {
	flat := &DBConfig{Dir: "/d", Pattern: "*.db"}
	deep := &DBConfig{Dir: "/d", Pattern: "*.db", Recursive: true}
	for _, tc := range []struct {
		entry   *DBConfig
		path    string
		want    string
		refused bool
	}{
		{flat, "/d/a.db", "a.db", false},
		{flat, "/d/sub/a.db", "", false},
		{deep, "/d/sub/a.db", "sub/a.db", false},
		{flat, "/d/a.db-wal", "", false},
		{flat, "/d/a.db-shm", "", false},
		{flat, "/d/a.db-journal", "", false},
		{flat, "/d/a.sqlite", "", false},
		{flat, "/e/a.db", "", false},
		{flat, "/d", "", false},
		{flat, "/d/../e/a.db", "", false},
		{flat, "/dd/a.db", "", false},
		{deep, "/d/.a.db-litestream/x.db", "", false},
		{deep, "/d/b.db/c.db", "", true},
	} {
		got, err := dirEntryRelPath(tc.entry, tc.path)
		if got != tc.want || (err != nil) != tc.refused {
			t.Errorf("%s (recursive %v): %q, %v; want %q, refused %v", tc.path, tc.entry.Recursive, got, err, tc.want, tc.refused)
		}
	}
	for _, rel := range []string{"../x.db", "/abs.db", "", ".", "a/../../x.db"} {
		if _, err := relativeDBPath(rel); err == nil {
			t.Errorf("relative path %q accepted", rel)
		}
	}
}

// TestReplicaUnder: the relative path lands below the replica's root for
// every backend and every way of writing the root.
func TestReplicaUnder(t *testing.T) {
	const rel = "a/b.db"
	for _, tc := range []struct {
		rc   ReplicaConfig
		want string // the URL or path after the mapping
		root func(*ReplicaConfig) string
	}{
		{ReplicaConfig{Type: "file", Path: "/b/t"}, "/b/t/a/b.db", func(r *ReplicaConfig) string {
			c, _ := newReplicaFromConfig(r, nil)
			return c.Client.(*file.ReplicaClient).Root()
		}},
		{ReplicaConfig{Type: "s3", URL: "s3://bkt/tenants"}, "s3://bkt/tenants/a/b.db", func(r *ReplicaConfig) string { return s3ClientOf(t, r).Path }},
		{ReplicaConfig{Type: "s3", URL: "s3://bkt"}, "s3://bkt/a/b.db", func(r *ReplicaConfig) string { return s3ClientOf(t, r).Path }},
		{ReplicaConfig{Type: "s3", URL: "s3://bkt/tenants/?endpoint=http://localhost:9000&forcePathStyle=true"}, "s3://bkt/tenants/a/b.db?endpoint=http://localhost:9000&forcePathStyle=true",
			func(r *ReplicaConfig) string { return s3ClientOf(t, r).Path + " " + s3ClientOf(t, r).Endpoint }},
		{ReplicaConfig{Type: "s3", Bucket: "bkt", Path: "tenants"}, "tenants/a/b.db", func(r *ReplicaConfig) string { return s3ClientOf(t, r).Path }},
		{ReplicaConfig{Type: "s3", Bucket: "bkt"}, "a/b.db", func(r *ReplicaConfig) string { return s3ClientOf(t, r).Path }},
		{ReplicaConfig{Type: "gcs", URL: "gcs://bkt/tenants"}, "gcs://bkt/tenants/a/b.db", func(r *ReplicaConfig) string { return clientPath(t, r) }},
		{ReplicaConfig{Type: "abs", URL: "abs://acct@ctr/tenants", AccountKey: "a2V5"}, "abs://acct@ctr/tenants/a/b.db", func(r *ReplicaConfig) string { return clientPath(t, r) }},
		{ReplicaConfig{Type: "sftp", URL: "sftp://u:pw@host:2222/srv/tenants"}, "sftp://u:pw@host:2222/srv/tenants/a/b.db", func(r *ReplicaConfig) string { return clientPath(t, r) }},
		{ReplicaConfig{Type: "sftp", Host: "host", Path: "rel/tenants"}, "rel/tenants/a/b.db", func(r *ReplicaConfig) string { return clientPath(t, r) }},
	} {
		got, err := replicaUnder(&tc.rc, rel)
		if err != nil {
			t.Fatal(err)
		}
		shown := got.URL
		if shown == "" {
			shown = got.Path
		}
		if shown != tc.want {
			t.Errorf("%+v: %q, want %q", tc.rc, shown, tc.want)
		}
		if root := tc.root(got); !strings.Contains(root, "a/b.db") || strings.Contains(root, "a/b.db/") {
			t.Errorf("%+v: the client's root is %q", tc.rc, root)
		}
	}
	if _, err := replicaUnder(&ReplicaConfig{Type: "file", Path: "/b"}, "../x.db"); err == nil {
		t.Error("a relative path with .. was accepted")
	}
}

// clientPath returns the root path of a gcs, abs or sftp replica's client.
func clientPath(t *testing.T, rc *ReplicaConfig) string {
	t.Helper()
	r, err := newReplicaFromConfig(rc, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch c := r.Client.(type) {
	case *gcs.ReplicaClient:
		return c.Path
	case *abs.ReplicaClient:
		return c.Path
	case *sftp.ReplicaClient:
		return c.Path
	}
	t.Fatalf("client %T", r.Client)
	return ""
}

// TestClassify: the matcher's reading of a file's first bytes.
func TestClassify(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		content string
		want    fileClass
	}{
		{"empty", "", maybeDatabase},
		{"header begun", "SQLite for", maybeDatabase},
		{"header", "SQLite format 3\x00" + strings.Repeat("x", 100), isDatabase},
		{"text", "hello, world, this is not a database", notDatabase},
		{"short text", "hi", notDatabase},
	} {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := classify(p); got != tc.want || err != nil {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "header"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if got, _ := classify(filepath.Join(dir, "link")); got != notDatabase {
		t.Errorf("a symbolic link is %v", got)
	}
	if got, _ := classify(dir); got != notDatabase {
		t.Errorf("a directory is %v", got)
	}
}

// s3ClientOf returns the S3 client a replica config builds.
func s3ClientOf(t *testing.T, rc *ReplicaConfig) *s3pkg.ReplicaClient {
	t.Helper()
	c, err := newS3Client(rc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
