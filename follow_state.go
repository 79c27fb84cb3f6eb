package litestream

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/litestream-go/litestream/internal/walformat"
)

// followState is what the sidecar holds: the position the follower
// database has reached (invariant 3 of follow.go), and what validating the
// next segment of that index needs: the index's WAL header and the
// cumulative checksum of its last frame. Resync says a resync may have
// committed, or be about to, whatever Pos says: the next start resyncs.
type followState struct {
	Replica  string
	Pos      Pos
	PageSize int
	Header   *walformat.Header // nil before the index's first segment (Pos.Offset == 0)
	Sum1     uint32
	Sum2     uint32
	Resync   bool
}

// followSidecar is the JSON form, with hex positions as every command
// shows them.
type followSidecar struct {
	Version    int       `json:"version"`
	Replica    string    `json:"replica"`
	Generation string    `json:"generation"`
	Index      string    `json:"index"`
	Offset     string    `json:"offset"`
	PageSize   int       `json:"page_size"`
	WALHeader  string    `json:"wal_header,omitempty"` // base64 of the 32 bytes
	Checksum   [2]uint32 `json:"checksum"`
	Resync     bool      `json:"resync_pending,omitempty"`
	Updated    time.Time `json:"updated"`
}

const followSidecarVersion = 1

// writeFollowState writes the sidecar atomically: a temporary file,
// fsynced, renamed over the sidecar, the directory fsynced.
func writeFollowState(path string, st followState) error {
	sc := followSidecar{
		Version: followSidecarVersion, Replica: st.Replica, Generation: st.Pos.Generation,
		Index: FormatIndex(st.Pos.Index), Offset: FormatOffset(st.Pos.Offset), PageSize: st.PageSize,
		Checksum: [2]uint32{st.Sum1, st.Sum2}, Resync: st.Resync, Updated: time.Now().UTC(),
	}
	if st.Header != nil {
		sc.WALHeader = base64.StdEncoding.EncodeToString(st.Header.Encode())
	}
	b, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write follower sidecar: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write follower sidecar: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync follower sidecar: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write follower sidecar: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write follower sidecar: %w", err)
	}
	return syncDirectory(filepath.Dir(path))
}

// readFollowState reads and checks a sidecar.
func readFollowState(path string) (followState, error) {
	var st followState
	b, err := os.ReadFile(path)
	if err != nil {
		return st, fmt.Errorf("read follower sidecar: %w", err)
	}
	bad := func(what string) error {
		return fmt.Errorf("follower sidecar %s is damaged (%s): remove the output and %s, then start the follower again to restore afresh", path, what, path)
	}
	var sc followSidecar
	if err := json.Unmarshal(b, &sc); err != nil {
		return st, bad(err.Error())
	}
	if sc.Version != followSidecarVersion {
		return st, bad(fmt.Sprintf("version %d, this litestream reads version %d", sc.Version, followSidecarVersion))
	}
	if !IsGeneration(sc.Generation) {
		return st, bad(fmt.Sprintf("generation %q", sc.Generation))
	}
	idx, err := ParseIndex(sc.Index)
	if err != nil {
		return st, bad(err.Error())
	}
	off, ok := parseHexField(sc.Offset)
	if !ok || off > 1<<62 {
		return st, bad(fmt.Sprintf("offset %q", sc.Offset))
	}
	if sc.PageSize < 512 || sc.PageSize > 65536 || sc.PageSize&(sc.PageSize-1) != 0 {
		return st, bad(fmt.Sprintf("page size %d", sc.PageSize))
	}
	st = followState{Replica: sc.Replica, Pos: Pos{Generation: sc.Generation, Index: idx, Offset: int64(off)},
		PageSize: sc.PageSize, Sum1: sc.Checksum[0], Sum2: sc.Checksum[1], Resync: sc.Resync}
	if sc.WALHeader != "" {
		raw, err := base64.StdEncoding.DecodeString(sc.WALHeader)
		if err != nil {
			return st, bad("wal_header: " + err.Error())
		}
		hdr, err := walformat.ParseHeader(raw)
		if err != nil {
			return st, bad("wal_header: " + err.Error())
		}
		if int(hdr.PageSize) != st.PageSize {
			return st, bad("wal_header page size differs from page_size")
		}
		st.Header = &hdr
	}
	if (st.Header == nil) != (st.Pos.Offset == 0) {
		return st, bad("wal_header must be present exactly when the offset is not 0")
	}
	return st, nil
}

// syncDirectory fsyncs a directory, so that a rename in it is durable.
func syncDirectory(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// followLockPath is the file a running follower holds locked.
func followLockPath(outputPath string) string { return FollowSidecarPath(outputPath) + ".lock" }

// lockFollower takes the output's follower lock, so that two followers
// never apply to one output; the result releases it.
func lockFollower(outputPath string) (func(), error) {
	p := followLockPath(outputPath)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create follower lock %s: %w", p, err)
	}
	ok, err := tryLockFile(f)
	if err != nil && fileLocks {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	if !ok && fileLocks {
		f.Close()
		return nil, fmt.Errorf("another follower is running on %s (it holds %s): stop it first", outputPath, p)
	}
	return func() { f.Close() }, nil
}

// followTempPrefix begins the names of a follower's temporary
// directories, next to its output.
func followTempPrefix(outputPath string) string {
	return "." + filepath.Base(outputPath) + "-follow-tmp-"
}

// removeFollowTemps removes what a killed follower of outputPath left:
// temporary directories and a sidecar's temporary file. The caller holds
// the follower lock, so none of them is in use.
func removeFollowTemps(outputPath string, logger *slog.Logger) {
	dir := filepath.Dir(outputPath)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	prefix := followTempPrefix(outputPath)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.RemoveAll(p); err != nil {
			logger.Warn("could not remove a killed follower's temporary files; remove them by hand", "path", p, "error", err)
			continue
		}
		logger.Info("removed a killed follower's temporary files", "path", p)
	}
	_ = os.Remove(FollowSidecarPath(outputPath) + ".tmp")
}
