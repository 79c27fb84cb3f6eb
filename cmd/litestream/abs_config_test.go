package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/abs"
)

// The helpers below are shared by the abs, gcs and sftp config tests.

// oneReplicaConfig is a config of one database with one replica, whose
// keys replica gives (indented for its list item).
func oneReplicaConfig(replica string) []byte {
	return []byte("dbs:\n  - path: /a.db\n    replicas:\n      - " + replica + "\n")
}

// twoReplicaConfig is a config of two databases with one replica each.
func twoReplicaConfig(a, b string) string {
	return "dbs:\n  - path: /a.db\n    replicas:\n      - " + a + "\n  - path: /b.db\n    replicas:\n      - " + b + "\n"
}

// replicaOf loads a one-replica config and returns its replica.
func replicaOf(t *testing.T, replica string) *litestream.Replica {
	t.Helper()
	cfg, err := ParseConfig(oneReplicaConfig(replica), false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newReplicaFromConfig(cfg.DBs[0].Replicas[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// replicaClientOf loads a one-replica config and returns its client, of
// type C.
func replicaClientOf[C any](t *testing.T, replica string) C {
	t.Helper()
	r := replicaOf(t, replica)
	c, ok := r.Client.(C)
	if !ok {
		t.Fatalf("client is a %T", r.Client)
	}
	return c
}

// replicaLogLine loads a one-replica config and returns the startup log
// line of its replica.
func replicaLogLine(t *testing.T, replica string) string {
	t.Helper()
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("replicating", replicaLogAttrs(replicaOf(t, replica))...)
	return buf.String()
}

// requireNoSecret fails t if text (an error or a log line, of what)
// shows any of secrets.
func requireNoSecret(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s: %q shows the secret %q", what, text, s)
		}
	}
}

// refusal is an input that must be refused with an error holding want.
type refusal struct{ in, want string }

// requireURLsRefused checks that parseReplicaURL refuses each URL with its
// words, never showing secret.
func requireURLsRefused(t *testing.T, secret string, cases []refusal) {
	t.Helper()
	for _, tc := range cases {
		_, err := parseReplicaURL(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.in, err, tc.want)
			continue
		}
		requireNoSecret(t, tc.in, err.Error(), secret)
	}
}

// requireReplicasRefused checks that a config of each one replica is
// refused with its words, never showing secret.
func requireReplicasRefused(t *testing.T, secret string, cases []refusal) {
	t.Helper()
	for _, tc := range cases {
		_, err := ParseConfig(oneReplicaConfig(tc.in), false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.in, err, tc.want)
		}
		if err != nil {
			requireNoSecret(t, tc.in, err.Error(), secret)
		}
	}
}

// destCase is a config of replicas that is refused with an error holding
// each of want, or accepted when want is nil.
type destCase struct {
	name, src string
	want      []string
}

// requireDests runs each case as a subtest; no error shows any of
// secrets.
func requireDests(t *testing.T, cases []destCase, secrets ...string) {
	t.Helper()
	for _, tc := range cases {
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
			requireNoSecret(t, tc.name, err.Error(), secrets...)
		})
	}
}

// TestABSReplicaURL: abs://[ACCOUNT@]CONTAINER/PATH is an abs replica;
// malformed ones fail naming the form, and a key in the URL is refused
// without being shown.
func TestABSReplicaURL(t *testing.T) {
	rc, err := parseReplicaURL("abs://acct@cont/db/app")
	if err != nil || rc.Type != "abs" || rc.URL != "abs://acct@cont/db/app" {
		t.Fatalf("parseReplicaURL = %+v, %v", rc, err)
	}
	requireURLsRefused(t, "SECRETKEY", []refusal{
		{"abs:///db", "write abs://[ACCOUNT@]CONTAINER/PATH"},
		{"abs:cont/db", "write abs://[ACCOUNT@]CONTAINER/PATH"},
		{"abs://acct:SECRETKEY@cont/db", "carries no account key"},
		{"abs://acct@cont/db?endpont=http://x", `unknown parameter "endpont"`},
	})
}

// TestABSConfig: the URL first, then the explicit keys (v0.3's
// account-name, account-key, bucket, path, endpoint), which win.
func TestABSConfig(t *testing.T) {
	for _, tc := range []struct {
		name, replica                           string
		account, key, container, path, endpoint string
	}{
		{"url", "url: abs://acct@cont/db/app", "acct", "", "cont", "db/app", ""},
		{"url and keys", "url: abs://acct@cont/app\n        account-name: other\n        account-key: S0VZ\n        endpoint: http://127.0.0.1:10000/other",
			"other", "S0VZ", "cont", "app", "http://127.0.0.1:10000/other"},
		{"url without account", "url: abs://cont/app\n        account-name: acct", "acct", "", "cont", "app", ""},
		{"url endpoint", "url: abs://acct@cont/app?endpoint=http://127.0.0.1:10000/acct", "acct", "", "cont", "app", "http://127.0.0.1:10000/acct"},
		{"keys", "type: abs\n        account-name: acct\n        bucket: cont\n        path: /db/app/", "acct", "", "cont", "db/app", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := replicaClientOf[*abs.ReplicaClient](t, tc.replica)
			if c.AccountName != tc.account || c.AccountKey != tc.key || c.Bucket != tc.container || c.Path != tc.path || c.Endpoint != tc.endpoint {
				t.Fatalf("got account %q key %q container %q path %q endpoint %q", c.AccountName, c.AccountKey, c.Bucket, c.Path, c.Endpoint)
			}
		})
	}
}

func TestABSConfigErrors(t *testing.T) {
	requireReplicasRefused(t, "S0VZ", []refusal{
		{"type: abs\n        account-name: acct", "line 4: abs replica needs a url (abs://ACCOUNT@CONTAINER/PATH) or a bucket (the container)"},
		{"url: abs://cont/app", "line 4: abs replica has no storage account: write abs://ACCOUNT@CONTAINER/PATH, or set account-name"},
		{"type: abs\n        bucket: cont\n        account-key: S0VZ", "abs replica has no storage account"},
		{"url: abs://acct@cont/app\n        endpoint: 127.0.0.1:10000", `abs endpoint "127.0.0.1:10000" is not an http(s) URL`},
		{"url: abs://acct@cont/app\n        bucket: cont", "both url and bucket"},
		{"url: abs://acct@cont/app\n        path: app", "both path and url"},
		{"type: s3\n        url: abs://acct@cont/app", `type "s3" does not match url scheme "abs"`},
	})
}

// TestABSSharedReplicaPath: two abs replicas in one place, however spelt,
// or one inside the other, are refused at load; other accounts,
// containers, endpoints and neighbour prefixes are not.
func TestABSSharedReplicaPath(t *testing.T) {
	two := twoReplicaConfig
	requireDests(t, []destCase{
		{"url and keys", two("url: abs://acct@cont/app/", "type: abs\n        account-name: acct\n        bucket: cont\n        path: /app"),
			[]string{"line 7:", "writes to abs://acct@cont/app, as does", "(line 4)"}},
		{"default endpoint spelt out", two("url: abs://acct@cont/app", "url: abs://acct@cont/app\n        endpoint: https://acct.blob.core.windows.net/"), []string{"line 7:"}},
		{"azurite", two("url: abs://devstoreaccount1@cont/app?endpoint=http://127.0.0.1:10000/devstoreaccount1",
			"url: abs://devstoreaccount1@cont/app\n        endpoint: http://127.0.0.1:10000/devstoreaccount1/"), []string{"line 7:", "at 127.0.0.1:10000/devstoreaccount1"}},
		{"inside", two("url: abs://acct@cont/app", "url: abs://acct@cont/app/b"), []string{"line 7:", "inside abs://acct@cont/app", "must not nest"}},
		{"container root", two("url: abs://acct@cont", "url: abs://acct@cont/app"), []string{"must not nest"}},
		{"neighbour prefixes", two("url: abs://acct@cont/app", "url: abs://acct@cont/apple"), nil},
		{"other container", two("url: abs://acct@cont/app", "url: abs://acct@cont2/app"), nil},
		{"other account", two("url: abs://acct@cont/app", "url: abs://acct2@cont/app"), nil},
		{"other azurite account", two("url: abs://a1@cont/app?endpoint=http://127.0.0.1:10000/a1", "url: abs://a2@cont/app?endpoint=http://127.0.0.1:10000/a2"), nil},
		{"s3 and abs", two("url: s3://cont/app", "url: abs://acct@cont/app"), nil},
	})
}

// TestABSReplicaLogAttrs: the startup line of an abs replica names its
// account, container, prefix and endpoint, and never the key.
func TestABSReplicaLogAttrs(t *testing.T) {
	line := replicaLogLine(t, "url: abs://acct@cont/app\n        account-key: S0VZU0VDUkVU\n        endpoint: http://user:URLSECRET@127.0.0.1:10000/acct?sig=QSECRET\n        sync-interval: 5s")
	want := "replica=abs type=abs account=acct bucket=cont path=app endpoint=http://127.0.0.1:10000/acct sync_interval=5s"
	if !strings.Contains(line, want) {
		t.Errorf("%q does not contain %q", line, want)
	}
	requireNoSecret(t, "log line", line, "S0VZ", "SECRET", "user")
}
