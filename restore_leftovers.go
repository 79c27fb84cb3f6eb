package litestream

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// restoreLockName is the file in a restore's temporary directory that the
// restore holds locked while it runs. The kernel drops the lock when the
// process dies, however it dies, so a directory whose lock can be taken
// belongs to nobody.
const restoreLockName = "lock"

// restoreTempPattern is the os.MkdirTemp pattern of a restore's temporary
// directory, next to the output.
func restoreTempPattern(outputPath string) string {
	return restoreTempPrefix(outputPath) + "*" + restoreTempSuffix
}

// restoreTempPrefix and restoreTempSuffix frame the names the pattern makes.
func restoreTempPrefix(outputPath string) string {
	return "." + filepath.Base(outputPath) + ".restore-"
}

const restoreTempSuffix = ".tmp"

// lockRestoreDir creates tmpDir's lock file and locks it with lock
// (tryLockFile); closing the result releases it.
//
// The file is locked under another name and then renamed: a lock file
// that others can see is always locked, so none of them can take it in
// the moment between its creation and its lock. Where the file system
// refuses locks (some network and FUSE file systems), the restore goes on
// without one: its file keeps the other name, and a directory without a
// lock file is never taken for a leftover.
func lockRestoreDir(tmpDir string, lock func(*os.File) (bool, error)) (*os.File, error) {
	tmp := filepath.Join(tmpDir, restoreLockName+".new")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create restore lock in %s: %w", tmpDir, err)
	}
	if ok, err := lock(f); err == nil && ok {
		// Should the rename fail, the directory shows no lock file and
		// is left alone, as when the lock is refused.
		_ = os.Rename(tmp, filepath.Join(tmpDir, restoreLockName))
	}
	return f, nil
}

// releaseRestoreDir removes a restore's temporary directory, then lets go
// of its lock (where locks exist; elsewhere the open file would keep the
// directory from going).
func releaseRestoreDir(tmpDir string, lock *os.File) {
	if !fileLocks {
		lock.Close()
		os.RemoveAll(tmpDir)
		return
	}
	os.RemoveAll(tmpDir)
	lock.Close()
}

// removeRestoreLeftovers removes the temporary directories that restores
// to outputPath killed before they could clean up left behind (each holds
// a partial database, as large as the restore got). A directory whose lock
// is held is a restore still running and is left alone, as is one without
// a lock file (a restore that has just created it, or one from a build
// before the lock), and all of them where file locks are not supported.
func removeRestoreLeftovers(outputPath string, logger *slog.Logger) {
	if !fileLocks {
		return
	}
	dir := filepath.Dir(outputPath)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	// Matched literally, not as a glob: the output's name may hold * or [.
	prefix := restoreTempPrefix(outputPath)
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) || !strings.HasSuffix(e.Name(), restoreTempSuffix) {
			continue
		}
		m := filepath.Join(dir, e.Name())
		f, err := os.OpenFile(filepath.Join(m, restoreLockName), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if ok, err := tryLockFile(f); err != nil || !ok {
			f.Close()
			continue
		}
		// Removed while locked: a restore starting meanwhile cannot take it.
		err = os.RemoveAll(m)
		f.Close()
		if err != nil {
			logger.Warn("could not remove an interrupted restore's temporary directory; remove it by hand", "path", m, "error", err)
			continue
		}
		logger.Info("removed an interrupted restore's temporary directory", "path", m)
	}
}

// ErrOutputExists is wrapped by the error of a restore whose output path
// holds a file, found before the restore began or appeared while it ran.
var ErrOutputExists = errors.New("restore never overwrites")

// outputSidecars are the files SQLite takes for a database's own when it
// opens it: it applies the pages of a -wal file (nothing in a WAL names
// the database it belongs to), trusts a -shm file as the WAL's index, and
// rolls a hot -journal back into the database. Beside a restored file, any
// of them from another database corrupts it on its first open.
var outputSidecars = []string{"-wal", "-shm", "-journal"}

// CheckRestoreOutput returns nil when a restore may write outputPath:
// nothing is there (else an error wrapping ErrOutputExists), and none of
// outputSidecars is beside it (else an error naming them). Restore checks
// this itself; a caller checks first to fail before planning.
func CheckRestoreOutput(outputPath string) error {
	if _, err := os.Lstat(outputPath); err == nil {
		return fmt.Errorf("output %s already exists: %w; remove it or choose another path with -o", outputPath, ErrOutputExists)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("check output %s: %w", outputPath, err)
	}
	return checkOutputSidecars(outputPath)
}

// checkOutputSidecars fails when any of outputSidecars exists beside
// outputPath, naming every one that does.
func checkOutputSidecars(outputPath string) error {
	var found []string
	for _, suffix := range outputSidecars {
		p := outputPath + suffix
		if _, err := os.Lstat(p); err == nil {
			found = append(found, p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("check %s beside the output: %w", p, err)
		}
	}
	if len(found) == 0 {
		return nil
	}
	names, verb, they, them := found[0], "exists", "it belongs", "it"
	if len(found) > 1 {
		names = strings.Join(found[:len(found)-1], ", ") + " and " + found[len(found)-1]
		verb, they, them = "exist", "they belong", "them"
	}
	return fmt.Errorf("%s %s beside the output; %s to another database, and SQLite would take %s for the restored database's own "+
		"on its first open (replaying a -wal, rolling back a hot -journal) and corrupt it: move %s away or remove %s, then restore again",
		names, verb, they, them, them, them)
}
