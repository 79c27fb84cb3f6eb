package main

import (
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
		{"duplicate replica name", "dbs:\n  - path: /a.db\n    replicas:\n      - path: /b\n      - path: /c\n", []string{"line 5", `named "file"`, "line 4"}},
		{"database twice", "dbs:\n  - path: /a.db\n  - path: /x/../a.db\n", []string{"line 3", "listed twice", "line 2"}},
		{"database without path", "dbs:\n  - meta-path: /m\n", []string{"line 2", "no path"}},
		{"bad log level", "logging:\n  level: loud\n", []string{"logging.level", "loud"}},
		{"bad log type", "logging:\n  type: xml\n", []string{"logging.type", "xml"}},
		{"unsupported type", "dbs:\n  - path: /a.db\n    replicas:\n      - url: gcs://b/p\n", []string{"line 4", "not supported"}},
		{"unknown type", "dbs:\n  - path: /a.db\n    replicas:\n      - type: ftp\n        path: /x\n", []string{"line 4", `"ftp"`}},
		{"negative interval", "dbs:\n  - path: /a.db\n    monitor-interval: -1s\n", []string{"line 2", "monitor-interval"}},
		{"not yaml", "dbs: [\n", []string{"line"}},
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

var exampleLine = regexp.MustCompile(`^# (- )?[a-z][a-z-]*:( |$)`)

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
