package litestream

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestRemoveRestoreLeftovers: of the temporary directories next to a
// restore's output, only those whose lock nobody holds go; a directory
// another restore holds, one without a lock file, and other outputs'
// directories stay.
func TestRemoveRestoreLeftovers(t *testing.T) {
	if !fileLocks {
		t.Skip("no file locks on this platform: leftovers are left alone")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out.db")
	mk := func(name string, lock bool) string {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "db"), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		if lock {
			if err := os.WriteFile(filepath.Join(p, restoreLockName), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	dead := mk(".out.db.restore-1.tmp", true)
	noLock := mk(".out.db.restore-2.tmp", false)
	other := mk(".other.db.restore-3.tmp", true)
	held, err := os.MkdirTemp(dir, restoreTempPattern(out))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := lockRestoreDir(held, tryLockFile)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()

	removeRestoreLeftovers(out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("unlocked leftover %s not removed (%v)", dead, err)
	}
	for _, p := range []string{filepath.Join(noLock, "db"), filepath.Join(other, "db"), filepath.Join(held, restoreLockName)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}

	// Names are matched literally: an output named like a glob of another
	// leaves that one's leftovers alone.
	dead2 := mk(".out.db.restore-5.tmp", true)
	removeRestoreLeftovers(filepath.Join(dir, "o?t.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := os.Stat(dead2); err != nil {
		t.Errorf("another output's leftover %s was removed: %v", dead2, err)
	}

	// Once its restore lets go, the held one is a leftover too.
	lock.Close()
	removeRestoreLeftovers(out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := os.Stat(held); !os.IsNotExist(err) {
		t.Errorf("released directory %s not removed (%v)", held, err)
	}
}

// TestRestoreWithoutFileLocks: where the file system refuses locks, a
// restore goes on, and its directory shows no lock file, so that another
// restore never takes it for a leftover.
func TestRestoreWithoutFileLocks(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.db")
	tmp, err := os.MkdirTemp(dir, restoreTempPattern(out))
	if err != nil {
		t.Fatal(err)
	}
	refused := func(*os.File) (bool, error) { return false, errors.New("flock: operation not supported") }
	lock, err := lockRestoreDir(tmp, refused)
	if err != nil {
		t.Fatalf("a refused lock failed the restore: %v", err)
	}
	defer lock.Close()
	if _, err := os.Stat(filepath.Join(tmp, restoreLockName)); !os.IsNotExist(err) {
		t.Fatalf("an unlocked directory shows a lock file (%v)", err)
	}
	removeRestoreLeftovers(out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("a running restore's unlocked directory was removed: %v", err)
	}
}
