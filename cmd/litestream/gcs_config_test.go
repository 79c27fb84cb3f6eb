package main

import (
	"strings"
	"testing"

	"github.com/litestream-go/litestream/gcs"
)

// TestGCSReplicaURL: gcs://BUCKET/PATH from the command line and from url:
// builds the client v0.3 would (its path cleaned the same way); a URL
// without a bucket, with credentials or with a query is refused, naming
// the form, never the password.
func TestGCSReplicaURL(t *testing.T) {
	for _, tc := range []struct{ url, bucket, path string }{
		{"gcs://bkt/db/app", "bkt", "db/app"},
		{"gcs://bkt", "bkt", ""},
		{"gcs://bkt/", "bkt", ""},
		{"gcs://bkt//db//app/", "bkt", "db/app"},
		{"GCS://bkt/app", "bkt", "app"},
	} {
		rc, err := parseReplicaURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if rc.Type != "gcs" {
			t.Errorf("%s: type %q", tc.url, rc.Type)
		}
		cfg := &Config{DBs: []*DBConfig{{Path: "/a.db", Replicas: []*ReplicaConfig{rc}}}}
		if err := cfg.normalize(); err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		r, err := newReplicaFromConfig(rc, nil)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		c, ok := r.Client.(*gcs.ReplicaClient)
		if !ok || c.Bucket != tc.bucket || c.Path != tc.path || r.Name != "gcs" {
			t.Errorf("%s: client %#v, replica %q", tc.url, r.Client, r.Name)
		}
	}
	requireURLsRefused(t, "SECRETPW", []refusal{
		{"gcs:///app", "write gcs://BUCKET/PATH"},
		{"gcs://", "write gcs://BUCKET/PATH"},
		{"gcs:bkt/app", "write gcs://BUCKET/PATH"},
		{"gcs://me:SECRETPW@bkt/app", "carries no credentials: credentials come from GOOGLE_APPLICATION_CREDENTIALS"},
		{"gcs://bkt/app?endpoint=http://localhost:4443", "takes no ?query"},
	})
}

// TestGCSConfig: type gcs with bucket and path (v0.3's keys), or a url;
// what is missing, doubled or meant for another backend is refused at its
// line.
func TestGCSConfig(t *testing.T) {
	one := func(replica string) string { return string(oneReplicaConfig(replica)) }
	cfg, err := ParseConfig([]byte(one("type: gcs\n        bucket: bkt\n        path: /db/app/\n        sync-interval: 5s")), false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newReplicaFromConfig(cfg.DBs[0].Replicas[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	// v0.3 keeps a path's leading slash in its object names.
	if c := r.Client.(*gcs.ReplicaClient); c.Bucket != "bkt" || c.Path != "/db/app" || r.Client.Type() != "gcs" {
		t.Fatalf("client %+v", c)
	}

	for _, tc := range []struct{ name, replica, want string }{
		{"no bucket", "type: gcs\n        path: app", "line 4: gcs replica needs a url (gcs://BUCKET/PATH) or a bucket"},
		{"url and bucket", "url: gcs://bkt/app\n        bucket: bkt", "line 4: replica has both url and bucket"},
		{"url and path", "url: gcs://bkt/app\n        path: app", "line 4: replica has both path and url"},
		{"type and scheme", "type: s3\n        url: gcs://bkt/app", `line 4: type "s3" does not match url scheme "gcs"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(one(tc.replica)), false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			requireNoSecret(t, tc.name, err.Error(), "S3SECRET", "PWSECRET")
		})
	}

	// Other backends' keys load, as in v0.3, which ignores them; the
	// startup log says so, without their values.
	for _, tc := range []struct{ replica, want string }{
		{"url: gcs://bkt/app\n        endpoint: http://localhost:4443", "line 4: gcs replica: endpoint ignored: it does not apply to this type, as in v0.3 (for a GCS emulator, set STORAGE_EMULATOR_HOST=HOST:PORT in the environment)"},
		{"type: gcs\n        bucket: bkt\n        access-key-id: AKIA\n        secret-access-key: S3SECRET\n        region: r", "line 4: gcs replica: access-key-id, region, secret-access-key ignored: they do not apply to this type, as in v0.3"},
		{"url: gcs://bkt/app\n        password: PWSECRET", "line 4: gcs replica: password ignored: it does not apply to this type, as in v0.3"},
	} {
		cfg, err := ParseConfig([]byte(one(tc.replica)), false)
		if err != nil {
			t.Fatalf("%s: %v", tc.replica, err)
		}
		if len(cfg.Warnings) != 1 || cfg.Warnings[0] != tc.want || strings.Contains(cfg.Warnings[0], "SECRET") {
			t.Errorf("warnings %q, want %q", cfg.Warnings, tc.want)
		}
	}

	// Global S3 keys are for S3 replicas: a gcs replica beside them is
	// fine (v0.3 copies them to every replica, and GCS ignores them).
	if _, err := ParseConfig([]byte("access-key-id: AKIA\nsecret-access-key: X\n"+one("url: gcs://bkt/app")), false); err != nil {
		t.Fatalf("global S3 keys refused a gcs replica: %v", err)
	}
}

// TestGCSReplicaDests: two gcs replicas writing to one bucket and prefix,
// spelt as a URL and as keys, or one inside the other, are refused; other
// buckets, neighbour prefixes and other stores are not.
func TestGCSReplicaDests(t *testing.T) {
	two := twoReplicaConfig
	requireDests(t, []destCase{
		{"URL and keys", two("url: gcs://bkt/app/", "type: gcs\n        bucket: bkt\n        path: app/"), []string{"line 7:", "writes to gcs://bkt/app, as does", "(line 4)"}},
		{"keys with a leading slash", two("type: gcs\n        bucket: bkt\n        path: /app", "type: gcs\n        bucket: bkt\n        path: //app/"), []string{"line 9:", "writes to gcs://bkt//app, as does"}},
		// Object names /app/... and app/... are not the same (v0.3 too).
		{"leading slash or none", two("url: gcs://bkt/app", "type: gcs\n        bucket: bkt\n        path: /app"), nil},
		{"slashes", two("url: gcs://bkt//app//", "url: gcs://bkt/app"), []string{"line 7:", "gcs://bkt/app"}},
		{"prefix inside another", two("url: gcs://bkt/app", "url: gcs://bkt/app/b"), []string{"line 7:", "inside gcs://bkt/app", "must not nest"}},
		{"bucket root", two("url: gcs://bkt", "url: gcs://bkt/app"), []string{"line 7:", "inside gcs://bkt,"}},
		{"neighbour prefixes", two("url: gcs://bkt/app", "url: gcs://bkt/apple"), nil},
		{"other bucket", two("url: gcs://bkt/app", "url: gcs://bkt2/app"), nil},
		{"gcs and s3", two("url: gcs://bkt/app", "url: s3://bkt/app"), nil},
		{"gcs and file", two("url: gcs://bkt/app", "path: /bkt/app"), nil},
	})
}

// TestGCSReplicaLogAttrs: the startup line of a gcs replica names its
// bucket, prefix, the emulator's host when one is in use, and its sync
// interval; never a credential.
func TestGCSReplicaLogAttrs(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "/etc/keys/KEYFILE.json")
	t.Setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:4443")
	line := replicaLogLine(t, "url: gcs://bkt/db/app\n        sync-interval: 5s")
	if want := "replica=gcs type=gcs bucket=bkt path=db/app emulator=127.0.0.1:4443 sync_interval=5s"; !strings.Contains(line, want) {
		t.Errorf("%q does not contain %q", line, want)
	}
	requireNoSecret(t, "log line", line, "KEYFILE")
}
