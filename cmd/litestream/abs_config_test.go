package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/litestream-go/litestream/abs"
)

// TestABSReplicaURL: abs://[ACCOUNT@]CONTAINER/PATH is an abs replica;
// malformed ones fail naming the form, and a key in the URL is refused
// without being shown.
func TestABSReplicaURL(t *testing.T) {
	rc, err := parseReplicaURL("abs://acct@cont/db/app")
	if err != nil || rc.Type != "abs" || rc.URL != "abs://acct@cont/db/app" {
		t.Fatalf("parseReplicaURL = %+v, %v", rc, err)
	}
	for _, tc := range []struct{ url, want string }{
		{"abs:///db", "write abs://[ACCOUNT@]CONTAINER/PATH"},
		{"abs:cont/db", "write abs://[ACCOUNT@]CONTAINER/PATH"},
		{"abs://acct:SECRETKEY@cont/db", "carries no account key"},
		{"abs://acct@cont/db?endpont=http://x", `unknown parameter "endpont"`},
	} {
		_, err := parseReplicaURL(tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.url, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "SECRETKEY") {
			t.Errorf("%s: the key is in the error: %v", tc.url, err)
		}
	}
}

// absClientOf loads a one-replica config and returns its abs client.
func absClientOf(t *testing.T, replica string) *abs.ReplicaClient {
	t.Helper()
	cfg, err := ParseConfig([]byte("dbs:\n  - path: /a.db\n    replicas:\n      - "+replica+"\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newReplicaFromConfig(cfg.DBs[0].Replicas[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := r.Client.(*abs.ReplicaClient)
	if !ok {
		t.Fatalf("client is a %T", r.Client)
	}
	return c
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
			c := absClientOf(t, tc.replica)
			if c.AccountName != tc.account || c.AccountKey != tc.key || c.Bucket != tc.container || c.Path != tc.path || c.Endpoint != tc.endpoint {
				t.Fatalf("got account %q key %q container %q path %q endpoint %q", c.AccountName, c.AccountKey, c.Bucket, c.Path, c.Endpoint)
			}
		})
	}
}

func TestABSConfigErrors(t *testing.T) {
	for _, tc := range []struct{ replica, want string }{
		{"type: abs\n        account-name: acct", "line 4: abs replica needs a url (abs://ACCOUNT@CONTAINER/PATH) or a bucket (the container)"},
		{"url: abs://cont/app", "line 4: abs replica has no storage account: write abs://ACCOUNT@CONTAINER/PATH, or set account-name"},
		{"type: abs\n        bucket: cont\n        account-key: S0VZ", "abs replica has no storage account"},
		{"url: abs://acct@cont/app\n        endpoint: 127.0.0.1:10000", `abs endpoint "127.0.0.1:10000" is not an http(s) URL`},
		{"url: abs://acct@cont/app\n        bucket: cont", "both url and bucket"},
		{"url: abs://acct@cont/app\n        path: app", "both path and url"},
		{"type: s3\n        url: abs://acct@cont/app", `type "s3" does not match url scheme "abs"`},
	} {
		_, err := ParseConfig([]byte("dbs:\n  - path: /a.db\n    replicas:\n      - "+tc.replica+"\n"), false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.replica, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "S0VZ") {
			t.Errorf("%q: the key is in the error: %v", tc.replica, err)
		}
	}
}

// TestABSSharedReplicaPath: two abs replicas in one place, however spelt,
// or one inside the other, are refused at load; other accounts,
// containers, endpoints and neighbour prefixes are not.
func TestABSSharedReplicaPath(t *testing.T) {
	two := func(a, b string) string {
		return "dbs:\n  - path: /a.db\n    replicas:\n      - " + a + "\n  - path: /b.db\n    replicas:\n      - " + b + "\n"
	}
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
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

// TestABSReplicaLogAttrs: the startup line of an abs replica names its
// account, container, prefix and endpoint, and never the key.
func TestABSReplicaLogAttrs(t *testing.T) {
	cfg, err := ParseConfig([]byte(`dbs:
  - path: /a.db
    replicas:
      - url: abs://acct@cont/app
        account-key: S0VZU0VDUkVU
        endpoint: http://user:URLSECRET@127.0.0.1:10000/acct?sig=QSECRET
        sync-interval: 5s
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
	want := "replica=abs type=abs account=acct bucket=cont path=app endpoint=http://127.0.0.1:10000/acct sync_interval=5s"
	if !strings.Contains(line, want) {
		t.Errorf("%q does not contain %q", line, want)
	}
	for _, secret := range []string{"S0VZ", "SECRET", "user"} {
		if strings.Contains(line, secret) {
			t.Errorf("%q shows %q", line, secret)
		}
	}
}
