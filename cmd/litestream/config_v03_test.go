package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestParseConfig_V03Spellings: a config that v0.3.14 loads, written the
// ways its users write it, loads here and means what it meant there.
func TestParseConfig_V03Spellings(t *testing.T) {
	t.Run("log level in any case", func(t *testing.T) {
		for in, want := range map[string]string{"INFO": "info", "Warn": "warn", "warning": "warn", "WARNING": "warn", "DEBUG": "debug", "Error": "error", "": ""} {
			cfg, err := ParseConfig([]byte("logging:\n  level: "+in+"\n  type: JSON\n"), false)
			if err != nil {
				t.Fatalf("level %q: %v", in, err)
			}
			if cfg.Logging.Level != want || cfg.Logging.Type != "json" {
				t.Errorf("level %q: got %q type %q, want %q json", in, cfg.Logging.Level, cfg.Logging.Type, want)
			}
			if _, err := newLogger(cfg.Logging, nil); err != nil {
				t.Errorf("level %q: %v", in, err)
			}
		}
	})

	t.Run("zero means off, as in v0.3", func(t *testing.T) {
		cfg, err := ParseConfig([]byte(`dbs:
  - path: /a.db
    checkpoint-interval: 0s
    max-checkpoint-page-count: 0
    replicas:
      - path: /b
        retention: 0s
        snapshot-interval: 0s
        validation-interval: 0s
`), false)
		if err != nil {
			t.Fatal(err)
		}
		db, err := newDBFromConfig(cfg.DBs[0], nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if db.CheckpointInterval != 0 || db.MaxCheckpointPageN != 0 {
			t.Errorf("checkpoint-interval %s, max-checkpoint-page-count %d: want both off (0)", db.CheckpointInterval, db.MaxCheckpointPageN)
		}
		r := db.Replicas[0]
		if r.Retention != 0 || r.SnapshotInterval != 0 || r.ValidationInterval != 0 {
			t.Errorf("retention %s, snapshot-interval %s, validation-interval %s: want 0 (keep all, off, off)", r.Retention, r.SnapshotInterval, r.ValidationInterval)
		}
		// And unset keeps the defaults, which are not 0.
		cfg, err = ParseConfig([]byte("dbs:\n  - path: /a.db\n    replicas:\n      - path: /b\n"), false)
		if err != nil {
			t.Fatal(err)
		}
		db, _ = newDBFromConfig(cfg.DBs[0], nil, nil)
		if db.CheckpointInterval != time.Minute || db.MaxCheckpointPageN == 0 || db.Replicas[0].Retention != 24*time.Hour {
			t.Errorf("defaults: checkpoint-interval %s, max-checkpoint-page-count %d, retention %s", db.CheckpointInterval, db.MaxCheckpointPageN, db.Replicas[0].Retention)
		}
	})

	t.Run("unnamed replicas of one type", func(t *testing.T) {
		cfg, err := ParseConfig([]byte(`dbs:
  - path: /a.db
    replicas:
      - path: /b
      - path: /c
      - name: file2
        path: /d
      - path: /e
`), false)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range cfg.DBs[0].Replicas {
			names = append(names, r.Name)
		}
		if got := strings.Join(names, " "); got != "file file3 file2 file4" {
			t.Errorf("names %q, want file file3 file2 file4 (an explicit name is kept, unnamed ones skip it)", got)
		}
		notes := strings.Join(cfg.Notes, "\n")
		if len(cfg.Notes) != 2 || !strings.Contains(notes, `line 5: the replica of /a.db has no name, and another file replica is named "file": it is named "file3"`) ||
			!strings.Contains(notes, `line 8:`) {
			t.Errorf("notes %q", cfg.Notes)
		}
	})

	t.Run("s3 BUCKET.localhost without a port", func(t *testing.T) {
		cfg, err := ParseConfig([]byte("dbs:\n  - path: /a.db\n    replicas:\n      - url: s3://bkt.localhost/app\n"), false)
		if err != nil {
			t.Fatal(err)
		}
		c, err := newS3Client(cfg.DBs[0].Replicas[0])
		if err != nil {
			t.Fatal(err)
		}
		if c.Bucket != "bkt" || c.Endpoint != "http://localhost" || c.Path != "app" || c.ForcePathStyle == nil || !*c.ForcePathStyle {
			t.Errorf("got bucket %q endpoint %q path %q", c.Bucket, c.Endpoint, c.Path)
		}
	})

	t.Run("path that is a URL", func(t *testing.T) {
		for _, u := range []string{"s3://bucket/db", "gcs://bucket/db", "sftp://u:hunter2@h/db"} {
			_, err := ParseConfig([]byte("dbs:\n  - path: /a.db\n    replicas:\n      - path: "+u+"\n"), false)
			if err == nil || !strings.Contains(err.Error(), "is a URL, not a path: write it as url:") || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("path %s: %v", u, err)
			}
		}
	})
}

// TestExecWithoutDatabases: as in v0.3, a config with exec and no dbs runs
// the child, and replicate exits with its exit code.
func TestExecWithoutDatabases(t *testing.T) {
	bin, _ := buildLitestream(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "litestream.yml")
	writeTestFile(t, cfg, "exec: sh -c 'echo child ran; exit 3'\n")
	res := runCLI(t, bin, dir, "replicate", "-config", cfg)
	if res.code != 3 || !strings.Contains(res.stdout, "child ran") || !strings.Contains(res.stdout+res.stderr, "lists no databases") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	writeTestFile(t, cfg, "addr: ''\n")
	res = runCLI(t, bin, dir, "replicate", "-config", cfg)
	if res.code == 0 || !strings.Contains(res.stderr, "no databases to replicate") {
		t.Fatalf("no dbs and no exec: exit %d, stderr %s", res.code, res.stderr)
	}
}

func writeTestFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestParseConfig_EveryV03Key loads a config that uses every key Litestream
// v0.3.14 accepts, with every replica type, written as its docs write them.
func TestParseConfig_EveryV03Key(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "id_ed25519")
	writeTestFile(t, keyPath, "not read at load\n")
	src := `addr: ":9090"
access-key-id: AKIAGLOBAL
secret-access-key: globalsecret
exec: myapp -serve
logging:
  level: INFO
  type: json
  stderr: true
dbs:
  - path: ` + filepath.Join(dir, "app.db") + `
    meta-path: ` + filepath.Join(dir, "meta") + `
    monitor-interval: 1s
    checkpoint-interval: 1m
    min-checkpoint-page-count: 1000
    max-checkpoint-page-count: 10000
    replicas:
      - type: file
        name: local
        path: ` + filepath.Join(dir, "backup") + `
        retention: 24h
        retention-check-interval: 1h
        sync-interval: 1s
        snapshot-interval: 6h
        validation-interval: 12h
        age:
          identities: []
          recipients: []
      - type: s3
        name: s3
        bucket: mybkt
        path: db
        region: us-east-1
        endpoint: http://localhost:9000
        force-path-style: true
        skip-verify: true
        access-key-id: AKIA
        secret-access-key: s3secret
      - url: s3://mybkt.localhost:9000/db2
      - type: gcs
        bucket: mygcs
        path: db
      - url: gcs://mygcs/db2
      - type: abs
        account-name: myaccount
        account-key: YWJzc2VjcmV0
        bucket: mycontainer
        path: db
        endpoint: http://127.0.0.1:10000/myaccount
      - url: abs://myaccount@mycontainer/db2
      - type: sftp
        host: backup.example.com:2222
        user: litestream
        password: sftpsecret
        path: /backups/db
      - type: sftp
        name: sftp-key
        host: backup.example.com
        user: litestream
        key-path: ` + keyPath + `
        path: /backups/db2
      - url: sftp://litestream:sftpsecret@backup.example.com/backups/db3
`
	cfg, err := ParseConfig([]byte(src), false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range cfg.DBs[0].Replicas {
		got = append(got, r.Type+":"+r.Name)
	}
	want := "file:local s3:s3 s3:s32 gcs:gcs gcs:gcs2 abs:abs abs:abs2 sftp:sftp sftp:sftp-key sftp:sftp2"
	if strings.Join(got, " ") != want {
		t.Errorf("replicas %q, want %q", strings.Join(got, " "), want)
	}
	db, err := newDBFromConfig(cfg.DBs[0], nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range db.Replicas {
		if typ := cfg.DBs[0].Replicas[i].Type; r.Client.Type() != typ {
			t.Errorf("replica %s of type %s has a %s client", r.Name, typ, r.Client.Type())
		}
	}
	if cfg.Logging.Level != "info" || cfg.Exec != "myapp -serve" || cfg.Addr != ":9090" {
		t.Errorf("top level: %+v", cfg)
	}
}
