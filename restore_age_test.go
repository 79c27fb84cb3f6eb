package litestream_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	agecrypt "filippo.io/age"
	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
)

// TestRestore_AgeKeys: restoring an age-encrypted replica without an
// identity, or with identities of which none matches, fails at once with
// a line that names the replica and age.identities, never the LZ4
// decoder's "bad magic number", and never a key; with the identity it
// restores.
func TestRestore_AgeKeys(t *testing.T) {
	ctx := context.Background()
	id, _ := agecrypt.GenerateX25519Identity()
	other, _ := agecrypt.GenerateX25519Identity()
	w, path, replicaDir := openWriter(t, 0)
	db, r := newTestDB(t, path, replicaDir)
	codec, err := litestream.ParseAgeKeys([]string{id.Recipient().String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Codec = codec
	commitRows(t, w, 10)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}

	restore := func(identities []string) (string, error) {
		codec, err := litestream.ParseAgeKeys(nil, identities)
		if err != nil {
			t.Fatal(err)
		}
		r := litestream.NewReplica("backup", file.NewReplicaClient(replicaDir))
		r.Codec = codec
		opt := latest()
		opt.Logger = testLogger(t)
		plan, err := litestream.PlanRestore(ctx, []*litestream.Replica{r}, opt)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out.db")
		return out, litestream.Restore(ctx, plan, out, opt)
	}
	for _, tc := range []struct {
		name       string
		identities []string
		want       error
		says       string
	}{
		{"no identity", nil, litestream.ErrAgeNoIdentity, "replica backup is encrypted with age"},
		{"no identity matches", []string{other.String()}, litestream.ErrAgeNoMatch, "no configured identity matches"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			out, err := restore(tc.identities)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.says) || !strings.Contains(msg, "age.identities") || strings.Contains(msg, "magic") {
				t.Fatalf("unclear error: %v", err)
			}
			for _, k := range []*agecrypt.X25519Identity{id, other} {
				if strings.Contains(msg, k.String()) || strings.Contains(msg, k.Recipient().String()) {
					t.Fatalf("error shows a key: %v", err)
				}
			}
			// The first retry alone would wait 200ms.
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("a key mismatch was retried (%s)", d)
			}
			assertNothingLeft(t, out)
		})
	}
	if _, err := restore([]string{other.String(), id.String()}); err != nil {
		t.Fatalf("with the identity: %v", err)
	}
}
