// Package sftp is the replica client for a directory on an SFTP server
// (OpenSSH's sftp subsystem, or any server with its extensions), in the
// layout of Litestream v0.3 under that directory.
//
// Invariants of the client (every method keeps them):
//  1. A replica file is written under a temporary name in its own
//     directory (see storeclient.TempName), synced when the server can,
//     and renamed onto its final name only when complete (posix-rename
//     replaces the old file in one step): a reader never sees half a
//     file, and a failed write leaves whatever was there before.
//  2. Temporary names never parse as snapshots or segments, so no listing
//     shows them; RemoveLeftovers removes those that killed writes left.
//  3. One SSH connection per client, opened on first use and re-dialled
//     when it breaks (see connect and drop); nothing is sent while the
//     client is idle.
//  4. A request that fails because no connection could be made, or the
//     connection broke, is retried with backoff, at most MaxAttempts
//     times (see do). A write is retried only if nothing of its body was
//     lost: bodies of up to stageSize are held in memory and can be sent
//     again; a larger one only before its first byte is sent.
//  5. A download cut short by a broken connection reopens the file and
//     goes on from the offset reached, at most maxResumes times (get.go).
//  6. No password, private key or passphrase appears in an error or a log
//     line; errors name the user, the host and the key file.
//  7. Every method refuses a generation or position that
//     litestream.ValidateGeneration or Pos.Validate rejects before it
//     builds a path, so no name reaches outside the replica's directory.
package sftp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"sort"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/storeclient"
)

// DefaultDialTimeout bounds the TCP connect and the SSH handshake of one
// dial, as v0.3's did.
const DefaultDialTimeout = 30 * time.Second

// DefaultMaxAttempts is the number of attempts of one request when
// MaxAttempts is not set.
const DefaultMaxAttempts = 10

// concurrency is the number of SFTP requests in flight per file transfer:
// 16 packets of 32 KiB, so a transfer holds at most 512 KiB in memory.
const concurrency = 16

// stageSize is how much of a write's body is read before the first byte
// is sent: a body that fits is sent again if the connection breaks.
const stageSize = 1 << 20

// ReplicaClient stores a replica in a directory on an SFTP server. Its
// exported fields are set before first use and not changed after.
type ReplicaClient struct {
	Host           string // HOST[:PORT], port 22 by default
	User           string
	Password       string // password login, if set
	KeyPath        string // a private key file for public key login, if set
	Path           string // the replica's directory; relative to the login directory unless absolute
	HostKey        string // the server's public key ("ssh-ed25519 AAAA..."); pins it
	KnownHostsPath string // a known_hosts file holding the server's key; pins it
	DialTimeout    time.Duration
	MaxAttempts    int          // per request, with backoff (default DefaultMaxAttempts)
	Logger         *slog.Logger // for the unverified host key warning; slog.Default() if nil

	// OnOp, if set, is called after each request with "GET", "PUT",
	// "LIST" or "DELETE" and the stored bytes moved.
	OnOp func(op string, bytes int64)

	mu       sync.Mutex // guards conn; held while dialling
	conn     *conn
	warnOnce sync.Once
	staging  sync.Pool // *[]byte of stageSize
}

var _ litestream.ReplicaClient = (*ReplicaClient)(nil)

// Type returns "sftp".
func (c *ReplicaClient) Type() string { return "sftp" }

func (c *ReplicaClient) op(op string, n int64) {
	if c.OnOp != nil {
		c.OnOp(op, n)
	}
}

// Addr returns the server's address, HOST:PORT, with port 22 when Host
// has none.
func (c *ReplicaClient) Addr() string {
	if _, _, err := net.SplitHostPort(c.Host); err == nil {
		return c.Host
	}
	return net.JoinHostPort(c.Host, "22")
}

// path returns the server path of a replica-relative path.
func (c *ReplicaClient) path(rel string) string { return path.Join(c.Path, rel) }

// conn is one SSH connection and the SFTP session on it.
type conn struct {
	ssh   *ssh.Client
	sftp  *sftp.Client
	dead  chan struct{} // closed when the connection ends
	fsync bool          // the server has fsync@openssh.com
	posix bool          // the server has posix-rename@openssh.com
}

// alive reports whether the connection has not ended.
func (cn *conn) alive() bool {
	select {
	case <-cn.dead:
		return false
	default:
		return true
	}
}

// broken reports whether err, from a request on cn, means the connection
// is gone.
func (cn *conn) broken(err error) bool {
	return !cn.alive() || classify(err).kind == failConnLost
}

func (cn *conn) close() {
	cn.sftp.Close()
	cn.ssh.Close()
}

// connect returns the client's connection, dialling it if there is none
// or it has ended.
func (c *ReplicaClient) connect(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		select {
		case <-c.conn.dead:
			c.conn.close()
			c.conn = nil
		default:
			return c.conn, nil
		}
	}
	cn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.conn = cn
	return cn, nil
}

// drop closes cn and forgets it, if it is still the client's connection.
func (c *ReplicaClient) drop(cn *conn) {
	c.mu.Lock()
	if c.conn == cn {
		c.conn = nil
	}
	c.mu.Unlock()
	cn.close()
}

// Close closes the connection, if one is open; the next request dials
// again.
func (c *ReplicaClient) Close() error {
	c.mu.Lock()
	cn := c.conn
	c.conn = nil
	c.mu.Unlock()
	if cn != nil {
		cn.close()
	}
	return nil
}

// dialError is a failure to open a connection: stage says how far it got.
type dialError struct {
	stage string // "connect", "handshake" or "sftp"
	err   error
}

func (e *dialError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// configError is a setting that cannot work; no retry will help.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

// dial opens an SSH connection and an SFTP session on it.
func (c *ReplicaClient) dial(ctx context.Context) (*conn, error) {
	if c.Host == "" {
		return nil, &configError{"sftp replica has no host: use sftp://USER@HOST[:PORT]/PATH or set host"}
	}
	if c.User == "" {
		return nil, &configError{"sftp replica has no user: use sftp://USER@HOST/PATH or set user"}
	}
	cfg := &ssh.ClientConfig{User: c.User}
	if c.Password != "" {
		cfg.Auth = append(cfg.Auth, ssh.Password(c.Password))
	}
	if c.KeyPath != "" {
		signer, err := readKey(c.KeyPath)
		if err != nil {
			return nil, err
		}
		cfg.Auth = append(cfg.Auth, ssh.PublicKeys(signer))
	}
	if len(cfg.Auth) == 0 {
		return nil, &configError{fmt.Sprintf("sftp replica for user %q has no password and no key-path: set one of them", c.User)}
	}
	hk, err := c.hostKeyCheck()
	if err != nil {
		return nil, err
	}
	cfg.HostKeyCallback, cfg.HostKeyAlgorithms = hk.callback, hk.algorithms
	cn, err := c.dialWith(ctx, cfg)
	if algos := hk.retryAlgorithms(err); algos != nil {
		// known_hosts holds another type of key than the one the server
		// offered first: ask for that type.
		cfg.HostKeyAlgorithms = algos
		cn, err = c.dialWith(ctx, cfg)
	}
	return cn, err
}

func (c *ReplicaClient) dialWith(ctx context.Context, cfg *ssh.ClientConfig) (*conn, error) {
	timeout := c.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	addr := c.Addr()
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &dialError{"connect", err}
	}
	// The handshake and the SFTP session's start are bounded by the
	// timeout, and end when ctx does.
	nc.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if err != nil {
		nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &dialError{"handshake", err}
	}
	client := ssh.NewClient(sc, chans, reqs)
	sc2, err := sftp.NewClient(client, sftp.MaxConcurrentRequestsPerFile(concurrency))
	if err != nil {
		client.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &dialError{"sftp", err}
	}
	if !stop() && ctx.Err() != nil {
		sc2.Close()
		client.Close()
		return nil, ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	cn := &conn{ssh: client, sftp: sc2, dead: make(chan struct{})}
	if v, ok := sc2.HasExtension("fsync@openssh.com"); ok && v == "1" {
		cn.fsync = true
	}
	if v, ok := sc2.HasExtension("posix-rename@openssh.com"); ok && v == "1" {
		cn.posix = true
	}
	go func() { client.Wait(); close(cn.dead) }()
	return cn, nil
}

// readKey reads and parses a private key file.
func readKey(p string) (ssh.Signer, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, &configError{fmt.Sprintf("cannot read key-path %s: %v", p, unwrapPathError(err))}
	}
	signer, err := ssh.ParsePrivateKey(b)
	var pe *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &pe):
		return nil, &configError{fmt.Sprintf("key-path %s is encrypted with a passphrase: give litestream a key without one", p)}
	case err != nil:
		return nil, &configError{fmt.Sprintf("key-path %s is not a private key litestream can read (%v): give an OpenSSH or PEM private key file", p, err)}
	}
	return signer, nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// permanent marks an error that must not be retried, whatever its kind.
type permanent struct{ err error }

func (e *permanent) Error() string { return e.err.Error() }
func (e *permanent) Unwrap() error { return e.err }

// do runs fn on the client's connection, retrying with backoff, at most
// MaxAttempts times, when no connection could be made or it broke. A
// broken connection is dropped, so that the next attempt dials again.
// The error, if any, is described in one line that starts with action.
func (c *ReplicaClient) do(ctx context.Context, action string, fn func(cn *conn) error) error {
	attempts := c.MaxAttempts
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	return c.doN(ctx, action, attempts, fn)
}

func (c *ReplicaClient) doN(ctx context.Context, action string, attempts int, fn func(cn *conn) error) error {
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := ctx.Err()
		if err == nil {
			var cn *conn
			if cn, err = c.connect(ctx); err == nil {
				if err = fn(cn); err != nil && cn.broken(err) {
					c.drop(cn)
				}
			}
		}
		if err == nil {
			return nil
		}
		f := classify(err)
		var p *permanent
		if !f.transient() || errors.As(err, &p) || attempt >= attempts || ctx.Err() != nil {
			f.attempts = attempt
			return c.describeAs(action, f, err)
		}
		if attempt == 1 && f.kind == failConnLost {
			// A connection that broke while idle (the server restarted,
			// a NAT forgot it): dial again at once.
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// Generations lists the generations, sorted.
func (c *ReplicaClient) Generations(ctx context.Context) ([]string, error) {
	fis, err := c.readDir(ctx, litestream.GenerationsDir())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, fi := range fis {
		if fi.IsDir() && litestream.IsGeneration(fi.Name()) {
			out = append(out, fi.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// readDir lists a replica-relative directory; a missing one is empty.
func (c *ReplicaClient) readDir(ctx context.Context, rel string) ([]os.FileInfo, error) {
	dir := c.path(rel)
	var out []os.FileInfo
	err := c.do(ctx, "list "+dir, func(cn *conn) error {
		fis, err := cn.sftp.ReadDirContext(ctx, dir)
		if errors.Is(err, os.ErrNotExist) {
			fis, err = nil, nil
		}
		if err != nil {
			return err
		}
		c.op("LIST", 0)
		out = fis
		return nil
	})
	return out, err
}

// files lists the regular files of a replica-relative directory, with
// their sizes and modification times; a missing directory is empty.
func (c *ReplicaClient) files(ctx context.Context, rel string) ([]storeclient.Object, error) {
	fis, err := c.readDir(ctx, rel)
	if err != nil {
		return nil, err
	}
	var out []storeclient.Object
	for _, fi := range fis {
		if fi.Mode().IsRegular() {
			out = append(out, storeclient.Object{Name: fi.Name(), Size: fi.Size(), Time: fi.ModTime().UTC()})
		}
	}
	return out, nil
}

// Snapshots lists a generation's snapshots by index, with the files'
// sizes and modification times.
func (c *ReplicaClient) Snapshots(ctx context.Context, generation string) ([]litestream.SnapshotInfo, error) {
	if err := litestream.ValidateGeneration(generation); err != nil {
		return nil, err
	}
	files, err := c.files(ctx, litestream.SnapshotsDir(generation))
	if err != nil {
		return nil, err
	}
	return storeclient.Snapshots(generation, files), nil
}

// Segments lists a generation's WAL segments by index and offset, with the
// files' sizes and modification times.
func (c *ReplicaClient) Segments(ctx context.Context, generation string) ([]litestream.SegmentInfo, error) {
	if err := litestream.ValidateGeneration(generation); err != nil {
		return nil, err
	}
	files, err := c.files(ctx, litestream.SegmentsDir(generation))
	if err != nil {
		return nil, err
	}
	return storeclient.Segments(generation, files), nil
}

// WriteSnapshot stores r as a snapshot; its CreatedAt is the file's
// modification time on the server.
func (c *ReplicaClient) WriteSnapshot(ctx context.Context, generation string, index int, r io.Reader) (litestream.SnapshotInfo, error) {
	if err := (litestream.Pos{Generation: generation, Index: index}).Validate(); err != nil {
		return litestream.SnapshotInfo{}, err
	}
	fi, err := c.writeFile(ctx, litestream.SnapshotPath(generation, index), r)
	if err != nil {
		return litestream.SnapshotInfo{}, err
	}
	return litestream.SnapshotInfo{Generation: generation, Index: index, Size: fi.Size(), CreatedAt: fi.ModTime().UTC()}, nil
}

// WriteSegment stores r as a WAL segment; its CreatedAt is the file's
// modification time on the server.
func (c *ReplicaClient) WriteSegment(ctx context.Context, pos litestream.Pos, r io.Reader) (litestream.SegmentInfo, error) {
	if err := pos.Validate(); err != nil {
		return litestream.SegmentInfo{}, err
	}
	fi, err := c.writeFile(ctx, litestream.SegmentPath(pos), r)
	if err != nil {
		return litestream.SegmentInfo{}, err
	}
	return litestream.SegmentInfo{Generation: pos.Generation, Index: pos.Index, Offset: pos.Offset, Size: fi.Size(), CreatedAt: fi.ModTime().UTC()}, nil
}

// OpenSnapshot opens a stored snapshot.
func (c *ReplicaClient) OpenSnapshot(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	if err := (litestream.Pos{Generation: generation, Index: index}).Validate(); err != nil {
		return nil, err
	}
	return c.get(ctx, c.path(litestream.SnapshotPath(generation, index)))
}

// OpenSegment opens a stored WAL segment.
func (c *ReplicaClient) OpenSegment(ctx context.Context, pos litestream.Pos) (io.ReadCloser, error) {
	if err := pos.Validate(); err != nil {
		return nil, err
	}
	return c.get(ctx, c.path(litestream.SegmentPath(pos)))
}

// DeleteGeneration removes a generation's directory and everything in it.
func (c *ReplicaClient) DeleteGeneration(ctx context.Context, generation string) error {
	if err := litestream.ValidateGeneration(generation); err != nil {
		return err
	}
	root := c.path(litestream.GenerationDir(generation))
	return c.do(ctx, "delete generation "+root, func(cn *conn) error {
		var files, dirs []string
		w := cn.sftp.Walk(root)
		for w.Step() {
			if err := w.Err(); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				return err
			}
			if w.Stat().IsDir() {
				dirs = append(dirs, w.Path())
			} else {
				files = append(files, w.Path())
			}
		}
		c.op("LIST", 0)
		if err := c.removeAll(ctx, cn, files); err != nil {
			return err
		}
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := cn.sftp.RemoveDirectory(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	})
}

// DeleteSnapshot removes a snapshot; a missing one is not an error.
func (c *ReplicaClient) DeleteSnapshot(ctx context.Context, generation string, index int) error {
	if err := (litestream.Pos{Generation: generation, Index: index}).Validate(); err != nil {
		return err
	}
	p := c.path(litestream.SnapshotPath(generation, index))
	return c.do(ctx, "delete "+p, func(cn *conn) error { return c.removeAll(ctx, cn, []string{p}) })
}

// DeleteSegments removes WAL segments, several requests at a time;
// missing ones are not an error.
func (c *ReplicaClient) DeleteSegments(ctx context.Context, positions []litestream.Pos) error {
	for _, p := range positions {
		if err := p.Validate(); err != nil {
			return err
		}
	}
	if len(positions) == 0 {
		return nil
	}
	paths := make([]string, len(positions))
	for i, p := range positions {
		paths[i] = c.path(litestream.SegmentPath(p))
	}
	return c.do(ctx, fmt.Sprintf("delete %d WAL segments in %s", len(paths), path.Dir(paths[0])), func(cn *conn) error {
		return c.removeAll(ctx, cn, paths)
	})
}

// removeAll removes files, concurrency at a time; missing ones are
// skipped. It returns the first error.
func (c *ReplicaClient) removeAll(ctx context.Context, cn *conn, paths []string) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, concurrency)
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			mu.Lock()
			first = cmp(first, err)
			mu.Unlock()
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := cn.sftp.Remove(p)
			if errors.Is(err, os.ErrNotExist) {
				return
			}
			if err != nil {
				mu.Lock()
				first = cmp(first, fmt.Errorf("remove %s: %w", p, unwrapPathError(err)))
				mu.Unlock()
				return
			}
			c.op("DELETE", 0)
		}()
	}
	wg.Wait()
	return first
}

// cmp returns a if it is set, else b.
func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// writeFile stores r at rel atomically (invariant 1) and returns the
// file's info as the server has it.
func (c *ReplicaClient) writeFile(ctx context.Context, rel string, r io.Reader) (os.FileInfo, error) {
	dst := c.path(rel)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bp, _ := c.staging.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, stageSize)
		bp = &b
	}
	defer c.staging.Put(bp)
	n, err := io.ReadFull(r, *bp)
	var body io.Reader
	replayable := false
	switch err {
	case nil:
		body = io.MultiReader(bytes.NewReader((*bp)[:n]), r)
	case io.EOF, io.ErrUnexpectedEOF:
		replayable = true
	default:
		return nil, fmt.Errorf("write %s: read: %w", dst, err)
	}
	var fi os.FileInfo
	started := false
	err = c.do(ctx, "write "+dst, func(cn *conn) error {
		src := body
		if replayable {
			src = bytes.NewReader((*bp)[:n])
		} else if started {
			return &permanent{errors.New("the connection broke while the body was being sent, and it cannot be sent again")}
		}
		started = true
		var err error
		fi, err = c.writeOnce(ctx, cn, dst, src)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.op("PUT", fi.Size())
	return fi, nil
}

// bodyError is a failure to read the body of a write: the caller's, not
// the server's.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "read: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// bodyReader passes reads through, marking their errors as the body's,
// and stops at the end of ctx.
type bodyReader struct {
	ctx context.Context
	r   io.Reader
}

func (b bodyReader) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &bodyError{err}
	}
	return n, err
}

// writeOnce writes src to a temporary file beside dst, syncs it if the
// server can, and renames it onto dst. On failure the temporary file is
// removed, if the connection still allows.
func (c *ReplicaClient) writeOnce(ctx context.Context, cn *conn, dst string, src io.Reader) (os.FileInfo, error) {
	dir := path.Dir(dst)
	tmp := path.Join(dir, storeclient.TempName(path.Base(dst)))
	f, err := cn.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if errors.Is(err, os.ErrNotExist) {
		if err := cn.sftp.MkdirAll(dir); err != nil {
			return nil, fmt.Errorf("create directory %s: %w", dir, unwrapPathError(err))
		}
		f, err = cn.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", tmp, unwrapPathError(err))
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			if cn.alive() {
				cn.sftp.Remove(tmp)
			}
		}
	}()
	if _, err := f.ReadFromWithConcurrency(bodyReader{ctx, src}, concurrency); err != nil {
		return nil, err
	}
	if cn.fsync {
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("sync %s: %w", tmp, err)
		}
	}
	fi, err := f.Stat() // rename keeps size and mtime
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close %s: %w", tmp, err)
	}
	if cn.posix {
		err = cn.sftp.PosixRename(tmp, dst)
	} else {
		// Plain SFTP rename fails onto an existing name: a reader may
		// find no file between the two requests, never half of one.
		if err = cn.sftp.Remove(dst); err == nil || errors.Is(err, os.ErrNotExist) {
			err = cn.sftp.Rename(tmp, dst)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("rename %s onto %s: %w", tmp, dst, unwrapPathError(err))
	}
	done = true
	return fi, nil
}
