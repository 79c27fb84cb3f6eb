package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseConfig_Full(t *testing.T) {
	cfg, err := ReadConfigFile("testdata/full.yml", true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":9090" || cfg.Exec != "myapp -serve" || cfg.Logging != (LoggingConfig{Level: "debug", Type: "json", Stderr: true}) {
		t.Fatalf("globals: %+v", cfg)
	}
	db := cfg.DBs[0]
	if db.Path != "/var/lib/app.db" || db.MetaPath != "/var/lib/.app-meta" || db.Line != 11 {
		t.Fatalf("db: %+v", db)
	}
	if db.MonitorInterval.D(0) != 2*time.Second || db.CheckpointInterval.D(0) != 30*time.Second || *db.MinCheckpointPageN != 700 || *db.MaxCheckpointPageN != 20000 {
		t.Fatalf("db intervals: %+v", db)
	}
	local, s3a, s3b := db.Replicas[0], db.Replicas[1], db.Replicas[2]
	if local.Name != "local" || local.Type != "file" || local.Path != "/backup/app" || local.Line != 18 {
		t.Fatalf("local: %+v", local)
	}
	if local.Retention.D(0) != 48*time.Hour || local.RetentionCheckInterval.D(0) != 30*time.Minute || local.SnapshotInterval.D(0) != 6*time.Hour ||
		local.SyncInterval.D(0) != 500*time.Millisecond || local.ValidationInterval.D(0) != 12*time.Hour {
		t.Fatalf("local intervals: %+v", local)
	}
	if local.Age == nil || local.Age.Recipients[0] != "age1example" || local.Age.Identities[0] != "AGE-SECRET-KEY-EXAMPLE" {
		t.Fatalf("age: %+v", local.Age)
	}
	if s3a.Type != "s3" || s3a.Name != "s3" || s3a.URL != "s3://bucket/app" || s3a.Region != "eu-west-1" || s3a.Endpoint != "http://localhost:9000" ||
		s3a.ForcePathStyle == nil || *s3a.ForcePathStyle || !s3a.SkipVerify {
		t.Fatalf("s3a: %+v", s3a)
	}
	if s3a.AccessKeyID != "GLOBALKEY" || s3a.SecretAccessKey != "GLOBALSECRET" {
		t.Fatalf("global credentials not propagated: %+v", s3a)
	}
	if s3b.Bucket != "other" || s3b.Path != "prefix" || s3b.AccessKeyID != "OWNKEY" || s3b.SecretAccessKey != "OWNSECRET" {
		t.Fatalf("s3b: %+v", s3b)
	}
}

func TestParseConfig_Expansion(t *testing.T) {
	t.Setenv("LS_TEST_DIR", "/data")
	t.Setenv("LS_TEST_NAME", "app")
	src := "dbs:\n  - path: $LS_TEST_DIR/${LS_TEST_NAME}.db\n    replicas:\n      - path: ~/backups\n"
	cfg, err := ParseConfig([]byte(src), true)
	if err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	if cfg.DBs[0].Path != "/data/app.db" || cfg.DBs[0].Replicas[0].Path != filepath.Join(home, "backups") {
		t.Fatalf("expanded: %s %s", cfg.DBs[0].Path, cfg.DBs[0].Replicas[0].Path)
	}
	cfg, err = ParseConfig([]byte(src), false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cfg.DBs[0].Path, "$LS_TEST_DIR/${LS_TEST_NAME}.db") {
		t.Fatalf("-no-expand-env expanded: %s", cfg.DBs[0].Path)
	}
}

func TestParseConfig_TypeFromURLAndPath(t *testing.T) {
	cfg, err := ParseConfig([]byte(`dbs:
  - path: /a.db
    replicas:
      - url: file:///backups/a
      - name: plain
        path: relative/dir
      - name: bucket
        bucket: b
`), true)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.DBs[0].Replicas
	wd, _ := os.Getwd()
	if r[0].Type != "file" || r[0].Path != "/backups/a" || r[0].Name != "file" {
		t.Fatalf("file url: %+v", r[0])
	}
	if r[1].Type != "file" || r[1].Path != filepath.Join(wd, "relative/dir") {
		t.Fatalf("plain path: %+v", r[1])
	}
	if r[2].Type != "s3" {
		t.Fatalf("bucket: %+v", r[2])
	}
}

func TestParseConfig_Errors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // substrings of the error
	}{
		{"unknown top-level key", "dbs: []\nadr: x\n", []string{"line 2", `unknown key "adr"`, `did you mean "addr"`}},
		{"unknown replica key", "dbs:\n  - path: /a.db\n    replicas:\n      - path: /b\n        sync-intervl: 1s\n", []string{"line 5", `"sync-intervl"`, `"sync-interval"`}},
		{"unknown db key", "dbs:\n  - path: /a.db\n    monitor: 1s\n", []string{"line 3", `"monitor"`}},
		{"bad duration", "dbs:\n  - path: /a.db\n    replicas:\n      - path: /b\n        sync-interval: 10 seconds\n", []string{"line 5", `"10 seconds"`, "Go syntax"}},
		{"path and url", "dbs:\n  - path: /a.db\n    replicas:\n      - path: /b\n        url: s3://x/y\n", []string{"line 4", "both path and url"}},
		{"no path or url", "dbs:\n  - path: /a.db\n    replicas:\n      - name: x\n", []string{"line 4", "needs a path"}},
		{"duplicate replica name", "dbs:\n  - path: /a.db\n    replicas:\n      - path: /b\n        name: x\n      - path: /c\n        name: x\n", []string{"line 6", `named "x"`, "line 4"}},
		{"database twice", "dbs:\n  - path: /a.db\n  - path: /x/../a.db\n", []string{"line 3", "listed twice", "line 2"}},
		{"database without path", "dbs:\n  - meta-path: /m\n", []string{"line 2", "no path"}},
		{"bad log level", "logging:\n  level: loud\n", []string{"logging.level", "loud"}},
		{"bad log type", "logging:\n  type: xml\n", []string{"logging.type", "xml"}},
		{"unknown type", "dbs:\n  - path: /a.db\n    replicas:\n      - type: ftp\n        path: /x\n", []string{"line 4", `"ftp"`}},
		{"negative interval", "dbs:\n  - path: /a.db\n    monitor-interval: -1s\n", []string{"line 2", "monitor-interval"}},
		{"not yaml", "dbs: [\n", []string{"line"}},
		{"tab in indentation", "dbs:\n  - path: /a.db\n    replicas:\n      - path: /x\n\tname: y\n", []string{"line 5:", "tab"}},
		{"key out of its block", "dbs:\n  - path: /a.db\n  replicas:\n", []string{"line 3:"}},
		{"list item out of its block", "dbs:\n  - path: /a.db\n    replicas:\n      - path: /x\n    - path: /y\n", []string{"line 5:"}},
		{"error on the first line", "a: b: c\n", []string{"line 1:"}},
		{"dbs as a map", "dbs:\n  path: /a.db\n", []string{"line 2:", "dbs must be a list of databases", "found keys and values (a map)"}},
		{"replicas as a map", "dbs:\n  - path: /a.db\n    replicas:\n      path: /x\n", []string{"line 4:", "replicas must be a list"}},
		{"database as a string", "dbs:\n  - /a.db\n", []string{"line 2:", "a database entry must be keys and values", "found a string"}},
		{"number expected", "dbs:\n  - path: /a.db\n    min-checkpoint-page-count: lots\n", []string{"line 3:", "expected a whole number; found a string (lots)"}},
		{"url that is no URL", "dbs:\n  - path: /a.db\n    replicas:\n      - url: s3:/bucket/x\n", []string{"line 4:", "write s3://BUCKET/PATH"}},
		{"url as a path", "dbs:\n  - path: /a.db\n    replicas:\n      - path: s3://bucket/x\n", []string{"line 4:", `path "s3://bucket/x" is a URL, not a path: write it as url:`}},
		{"url as an s3 path", "dbs:\n  - path: /a.db\n    replicas:\n      - type: s3\n        bucket: b\n        path: s3://bucket/x\n", []string{"line 4:", "is a URL, not a path"}},
		{"negative retention", "dbs:\n  - path: /a.db\n    replicas:\n      - path: /b\n        retention: -1s\n", []string{"line 4:", "retention must not be negative"}},
		{"zero monitor interval", "dbs:\n  - path: /a.db\n    monitor-interval: 0s\n", []string{"line 2", "monitor-interval must be positive"}},
		{"zero min checkpoint", "dbs:\n  - path: /a.db\n    min-checkpoint-page-count: 0\n", []string{"line 2", "min-checkpoint-page-count must be positive"}},
		{"url and bucket", "dbs:\n  - path: /a.db\n    replicas:\n      - url: s3://b/x\n        bucket: c\n", []string{"line 4:", "both url and bucket"}},
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
			if strings.Contains(err.Error(), "main.") || strings.Contains(err.Error(), "!!") {
				t.Errorf("error %q speaks of Go types or YAML tags", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
}

func TestReadConfigFile_Missing(t *testing.T) {
	_, err := ReadConfigFile(filepath.Join(t.TempDir(), "nope.yml"), true)
	if err == nil || !strings.Contains(err.Error(), "-config") || !strings.Contains(err.Error(), "LITESTREAM_CONFIG") {
		t.Fatalf("err = %v", err)
	}
}

func TestDefaultConfigPath(t *testing.T) {
	t.Setenv("LITESTREAM_CONFIG", "")
	if p := DefaultConfigPath(); p != "/etc/litestream.yml" {
		t.Fatal(p)
	}
	t.Setenv("LITESTREAM_CONFIG", "/x.yml")
	if p := DefaultConfigPath(); p != "/x.yml" {
		t.Fatal(p)
	}
}

func TestSplitCommandLine(t *testing.T) {
	got, err := splitCommandLine(`app -a 'x y' "q \"z\"" back\ slash`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"app", "-a", "x y", `q "z"`, "back slash"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q", got)
	}
	if _, err := splitCommandLine(`a 'b`); err == nil {
		t.Fatal("unterminated quote accepted")
	}
}

var exampleLine = regexp.MustCompile(`^# *(- )?[a-z][a-z-]*:( |$)`)

// TestSampleConfig: the commented sample config shipped in the package
// parses, and so does its example once uncommented.
func TestSampleConfig(t *testing.T) {
	if _, err := ReadConfigFile("../../etc/litestream.yml", true); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../etc/litestream.yml")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimLeft(l, " ")
		// Uncomment example lines ("# key: value" and "#   - ..."), keep prose.
		if exampleLine.MatchString(trimmed) {
			indent := len(l) - len(trimmed)
			l = strings.Repeat(" ", indent) + strings.TrimPrefix(trimmed, "# ")
			if i := strings.Index(l, "  #"); i >= 0 {
				l = l[:i]
			}
		}
		lines = append(lines, l)
	}
	t.Setenv("AWS_SECRET", "s")
	if _, err := ParseConfig([]byte(strings.Join(lines, "\n")), true); err != nil {
		t.Logf("uncommented sample:\n%s", strings.Join(lines, "\n"))
		t.Fatalf("uncommented sample: %v", err)
	}
}

// TestMinCheckpointPageCountSetByHand: unset, the engine checkpoints at 500
// pages, or 1000 while transactions are large; set in the config, the
// value holds at every transaction size.
func TestMinCheckpointPageCountSetByHand(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := newDBFromConfig(&DBConfig{Path: filepath.Join(t.TempDir(), "app.db")}, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	if db.MinCheckpointPageN != 500 || db.LargeTxCheckpointPageN != 1000 {
		t.Errorf("unset: %d and %d for large transactions; want 500 and 1000", db.MinCheckpointPageN, db.LargeTxCheckpointPageN)
	}
	n := 500
	db, err = newDBFromConfig(&DBConfig{Path: filepath.Join(t.TempDir(), "app.db"), MinCheckpointPageN: &n}, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	if db.MinCheckpointPageN != 500 || db.LargeTxCheckpointPageN != 0 {
		t.Errorf("set to 500: %d and %d for large transactions; want 500 and 0 (off)", db.MinCheckpointPageN, db.LargeTxCheckpointPageN)
	}
}

// TestReplicaURL_CommandLineAsConfig: a REPLICA_URL argument and a url: in
// the config file give the same replica, or the same error.
func TestReplicaURL_CommandLineAsConfig(t *testing.T) {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	for _, tc := range []struct {
		url        string
		typ, where string // want: type, and directory or URL; or
		err        string // an error holding this
	}{
		{url: "/backups/a", typ: "file", where: "/backups/a"},
		{url: "rel/dir", typ: "file", where: filepath.Join(wd, "rel/dir")},
		{url: "./s3:/bucket/x", typ: "file", where: filepath.Join(wd, "s3:/bucket/x")},
		{url: "C:/backups", typ: "file", where: filepath.Join(wd, "C:/backups")},
		{url: `C:\backups`, typ: "file", where: filepath.Join(wd, `C:\backups`)},
		{url: "file:///backups/a", typ: "file", where: "/backups/a"},
		{url: "file:/backups/a", typ: "file", where: "/backups/a"},
		{url: "file://localhost/backups/a", typ: "file", where: "/backups/a"},
		{url: "file:///backups/a/../b/", typ: "file", where: "/backups/b"},
		{url: "s3://bucket/app", typ: "s3", where: "s3://bucket/app"},
		{url: "s3://bucket.localhost:9000/app?region=x", typ: "s3", where: "s3://bucket.localhost:9000/app?region=x"},
		{url: "s3:/bucket/x", err: `replica URL "s3:/bucket/x": write s3://BUCKET/PATH`},
		{url: "s3:bucket/y", err: `replica URL "s3:bucket/y": write s3://BUCKET/PATH`},
		{url: "s3://", err: "write s3://BUCKET/PATH"},
		{url: "s3://b/x?endpont=http://h", err: `unknown parameter "endpont"`},
		{url: "s3://b/x?forcePathStyle=maybe", err: "forcePathStyle must be true or false"},
		{url: "s3://k:hunter2@b/x", err: `"s3://k:xxxxx@b/x": an s3 URL carries no credentials`},
		{url: "file:rel", err: `replica URL "file:rel": write file:///ABSOLUTE/PATH, or a plain path`},
		{url: "file:", err: "write file:///ABSOLUTE/PATH"},
		{url: "file://", err: "write file:///ABSOLUTE/PATH"},
		{url: "file://host/x", err: "a file URL has no host"},
		{url: "file:///x?y", err: "takes no ?query"},
		{url: "http://h/p", err: `unknown scheme "http"`},
		{url: "backups:2024", err: `unknown scheme "backups"`},
		{url: "my dir:x", err: "not a URL or a path"},
		{url: "1x:y", err: "not a URL or a path"},
		{url: "s3://b/%zz", err: "invalid URL escape"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			fs := newFlagSet("replicate", "", "")
			cf := registerConfigFlags(fs)
			if err := fs.Parse([]string{filepath.Join(dir, "a.db"), tc.url}); err != nil {
				t.Fatal(err)
			}
			cli, cliErr := loadReplicateConfig(fs, cf)
			file, fileErr := ParseConfig([]byte(fmt.Sprintf("dbs:\n  - path: /a.db\n    replicas:\n      - url: %q\n", tc.url)), false)
			if tc.err != "" {
				if cliErr == nil || fileErr == nil {
					t.Fatalf("accepted: command line %v, config file %v", cliErr, fileErr)
				}
				if want := "line 4: " + cliErr.Error(); fileErr.Error() != want {
					t.Errorf("config file says %q, command line %q", fileErr, cliErr)
				}
				if !strings.Contains(cliErr.Error(), tc.err) {
					t.Errorf("error %q does not contain %q", cliErr, tc.err)
				}
				if strings.Contains(cliErr.Error(), "hunter2") {
					t.Errorf("password in the error %q", cliErr)
				}
				return
			}
			if cliErr != nil || fileErr != nil {
				t.Fatalf("refused: command line %v, config file %v", cliErr, fileErr)
			}
			for _, r := range []*ReplicaConfig{cli.DBs[0].Replicas[0], file.DBs[0].Replicas[0]} {
				where := r.Path
				if r.Type == "s3" {
					where = r.URL
				}
				if r.Type != tc.typ || where != tc.where {
					t.Errorf("got type %q at %q; want %q at %q", r.Type, where, tc.typ, tc.where)
				}
			}
		})
	}
}

// TestParseConfig_SharedReplicaPath: two replicas that write to one place,
// or one inside the other, however spelt, are refused at load with both
// lines; neighbours are not.
func TestParseConfig_SharedReplicaPath(t *testing.T) {
	wd, _ := os.Getwd()
	two := func(a, b string) string {
		return "dbs:\n  - path: /a.db\n    replicas:\n      - " + a + "\n  - path: /b.db\n    replicas:\n      - " + b + "\n"
	}
	for _, tc := range []struct {
		name, src string
		want      []string // substrings of the error; none: accepted
	}{
		{"same directory", two("path: /x/rep", "path: /x/rep"), []string{"line 7:", `replica "file" of /b.db writes to /x/rep, as does replica "file" of /a.db (line 4)`, "retention"}},
		{"path and file URL", two("path: /x/rep", "url: file:///x/rep/"), []string{"line 7:", "(line 4)"}},
		{"relative and absolute", two("path: rep", "path: "+wd+"/sub/../rep"), []string{"line 7:", "writes to " + wd + "/rep"}},
		{"directory inside another", two("path: /x/rep", "path: /x/rep/b"), []string{"line 7:", "writes to /x/rep/b, inside /x/rep, where replica \"file\" of /a.db (line 4) writes", "must not nest"}},
		{"directory holding another", two("path: /x/rep/a", "path: /x/rep"), []string{"line 7:", "writes to /x/rep, which holds /x/rep/a", "must not nest"}},
		{"root directory", two("path: /", "path: /x"), []string{"line 7:", "must not nest"}},
		{"neighbour directories", two("path: /x/rep", "path: /x/rep2"), nil},
		{"two replicas of one database", "dbs:\n  - path: /a.db\n    replicas:\n      - name: a\n        path: /x\n      - name: b\n        path: /x/\n", []string{"line 6:", `replica "b" of /a.db writes to /x, as does replica "a" of /a.db (line 4)`}},
		{"s3 URL and bucket", two("url: s3://bkt/app/", "bucket: bkt\n        path: /app"), []string{"line 7:", "writes to s3://bkt/app, as does", "(line 4)"}},
		{"s3 slashes", two("url: s3://bkt//app//", "url: s3://bkt/app"), []string{"line 7:", "s3://bkt/app"}},
		{"s3 local host and endpoint", two("url: s3://bkt.localhost:9000/app", "bucket: bkt\n        path: app\n        endpoint: http://LOCALHOST:9000/"), []string{"line 7:", "s3://bkt/app at localhost:9000"}},
		{"s3 endpoint in the query", two("url: s3://bkt/app?endpoint=https://minio.example:443", "url: s3://bkt/app\n        endpoint: https://minio.example"), []string{"line 7:", "at minio.example"}},
		{"s3 provider host", two("url: s3://bkt.s3.us-west-004.backblazeb2.com/app", "bucket: bkt\n        path: app\n        endpoint: https://s3.us-west-004.backblazeb2.com"), []string{"line 7:"}},
		{"s3 prefix inside another", two("url: s3://bkt/app", "url: s3://bkt/app/b"), []string{"line 7:", "inside s3://bkt/app", "must not nest"}},
		{"s3 bucket root", two("url: s3://bkt", "url: s3://bkt/app"), []string{"line 7:", "inside s3://bkt,"}},
		{"s3 neighbour prefixes", two("url: s3://bkt/app", "url: s3://bkt/apple"), nil},
		{"s3 other bucket", two("url: s3://bkt/app", "url: s3://bkt2/app"), nil},
		{"s3 other endpoint", two("url: s3://bkt/app", "url: s3://bkt.localhost:9000/app"), nil},
		{"file and s3", two("path: /bkt/app", "url: s3://bkt/app"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.src), false)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestReplicaLogAttrs: the startup line of an S3 replica names its bucket,
// prefix, endpoint host, region and sync interval, and no credential.
func TestReplicaLogAttrs(t *testing.T) {
	cfg, err := ParseConfig([]byte(`access-key-id: AKIAGLOBAL
secret-access-key: GLOBALSECRET
dbs:
  - path: /a.db
    replicas:
      - url: s3://bkt/app?endpoint=https://user:URLSECRET@minio.example/
        region: eu-west-1
        sync-interval: 5s
        access-key-id: AKIAOWN
        secret-access-key: OWNSECRET
`), false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newReplicaFromConfig(cfg.DBs[0].Replicas[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("replicating", replicaLogAttrs(r)...)
	line := buf.String()
	for _, want := range []string{"replica=s3 type=s3 bucket=bkt path=app endpoint=https://minio.example/ region=eu-west-1 sync_interval=5s"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q does not contain %q", line, want)
		}
	}
	for _, secret := range []string{"AKIA", "SECRET", "user"} {
		if strings.Contains(line, secret) {
			t.Errorf("%q shows %q", line, secret)
		}
	}
}

// TestVersionFlags: the version stamped with -ldflags -X main.Version is
// what version, -version and --version print.
func TestVersionFlags(t *testing.T) {
	defer func(v string) { Version = v }(Version)
	Version = "v9.9.9-test"
	for _, args := range [][]string{{"version"}, {"-version"}, {"--version"}} {
		var stdout, stderr strings.Builder
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 || stdout.String() != "v9.9.9-test\n" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout.String(), stderr.String())
		}
	}
}

// TestConfigEmptyVars: a ${VAR} that expands to nothing is named with its
// line, so that replicate can warn about it; comment lines are not.
func TestConfigEmptyVars(t *testing.T) {
	t.Setenv("LITESTREAM_TEST_SET", "/tmp/x.db")
	t.Setenv("LITESTREAM_TEST_EMPTY", "")
	cfg, err := ParseConfig([]byte(`# ${LITESTREAM_TEST_IN_COMMENT}
dbs:
  - path: ${LITESTREAM_TEST_SET}
    replicas:
      - url: s3://bkt/app
        access-key-id: key
        secret-access-key: ${LITESTREAM_TEST_EMPTY}$LITESTREAM_TEST_UNSET
`), true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"line 7: LITESTREAM_TEST_EMPTY", "line 7: LITESTREAM_TEST_UNSET"}
	if strings.Join(cfg.EmptyVars, ",") != strings.Join(want, ",") {
		t.Fatalf("EmptyVars = %q, want %q", cfg.EmptyVars, want)
	}
}
