package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRestoreCommand_Output: checks of the output that fail (or, with
// -if-db-not-exists, succeed quietly) before the replica is read.
func TestRestoreCommand_Output(t *testing.T) {
	replica := "file://" + filepath.Join(t.TempDir(), "replica") // never read
	restore := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"restore"}, args...), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}

	dir := t.TempDir()
	out := filepath.Join(dir, "app.db")
	if err := os.WriteFile(out+"-wal", []byte("another database's WAL"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-o", out, replica}, {"-if-db-not-exists", "-o", out, replica}} {
		if code, msg := restore(args...); code != 1 || !strings.Contains(msg, out+"-wal exists beside the output") {
			t.Fatalf("%v: exit %d: %s", args, code, msg)
		}
	}
	if _, err := os.Lstat(out); !os.IsNotExist(err) {
		t.Fatalf("output written beside a -wal (%v)", err)
	}

	if err := os.WriteFile(out, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, msg := restore("-if-db-not-exists", "-o", out, replica); code != 0 || !strings.Contains(msg, "nothing restored (-if-db-not-exists)") {
		t.Fatalf("-if-db-not-exists with the output there: exit %d: %s", code, msg)
	}
	if code, msg := restore("-o", out, replica); code != 1 || !strings.Contains(msg, "already exists") {
		t.Fatalf("output there: exit %d: %s", code, msg)
	}
	if b, _ := os.ReadFile(out); string(b) != "precious" {
		t.Fatal("existing output modified")
	}
}
