package litestream

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"modernc.org/sqlite"
)

// dbConns are the engine's own connections to the watched database. Each has
// one job, so that the read lock, the write lock and the checkpoint never
// share a transaction:
//   - read holds the long-running read transaction that keeps other
//     connections from restarting the WAL past what has been copied;
//   - spare takes over the read transaction when it moves forward, so that
//     one is open at every moment (see advanceRead);
//   - write takes the write lock and makes the engine's own writes;
//   - ckpt runs checkpoints and is never inside a transaction.
//
// Invariants of the connections (each costs descriptors and a page cache,
// so an idle database keeps only read):
//  1. read is open from openDBConns to close. The others are opened for an
//     operation and closed after it: spare by advanceRead (the old read
//     connection closes once the new one holds its snapshot), ckpt around
//     one checkpoint, write from lockWrite to unlockWrite, or around one
//     bumpSeq outside the write lock. Closing one of them is safe while
//     read stays open: SQLite keeps the closed connection's descriptor of
//     the database while the process holds locks on it, and, with
//     NO_CKPT_ON_CLOSE, a close never checkpoints.
//  2. A connection opened later opens the files the first ones opened, or
//     is closed unused with an error: a database file, -wal or -shm
//     replaced at the path would give it another database or another WAL
//     (checkReplaced then starts over).
//  3. The pool keeps no idle connection (SetMaxIdleConns(0)), so a closed
//     connection is closed in SQLite, not kept behind the engine's back.
type dbConns struct {
	db        *sql.DB
	path      string
	ids       [3]os.FileInfo // the database file, -wal and -shm the first connections opened
	read      *sql.Conn
	spare     *sql.Conn // nil but inside advanceRead
	write     *sql.Conn // nil but inside an operation that writes (see invariant 1)
	ckpt      *sql.Conn // nil but inside checkpointPassive
	readHeld  bool      // our read transaction is open: it holds a WAL read mark (SQLite SHARED on the database, a read-mark lock in the -shm)
	writeHeld bool      // our write-lock transaction is open: it holds SQLite WAL_WRITE_LOCK (BEGIN IMMEDIATE)
}

// engineConnector opens the engine's connections: every one, the pool's
// included, never checkpoints when it closes (setNoCheckpointOnClose) and
// keeps the WAL file when it is the last to close (persistent WAL), so
// that the next start finds the WAL and can check continuity.
type engineConnector struct{ driver.Connector }

// Connect opens one connection and configures it.
func (c engineConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := configureEngineConn(conn); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func configureEngineConn(conn driver.Conn) error {
	if err := setNoCheckpointOnClose(conn); err != nil {
		return fmt.Errorf("turn off checkpoint on close: %w", err)
	}
	fc, ok := conn.(sqlite.FileControl)
	if !ok {
		return errors.New("driver has no file control")
	}
	if _, err := fc.FileControlPersistWAL("main", 1); err != nil {
		return fmt.Errorf("set persistent WAL: %w", err)
	}
	return nil
}

// openDBConns opens the engine's connections, switches the database to WAL
// mode if needed and creates the engine's two tables. It returns with only
// the read connection open (invariant 1).
func openDBConns(ctx context.Context, path string, onWALSwitch func(from string)) (*dbConns, error) {
	base, err := sqlite.NewConnector(sqliteDSN(path))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	sdb := sql.OpenDB(engineConnector{base})
	sdb.SetMaxIdleConns(0)
	c := &dbConns{db: sdb, path: path}
	ok := false
	defer func() {
		if !ok {
			c.close()
		}
	}()
	for _, p := range []**sql.Conn{&c.read, &c.write} {
		conn, err := sdb.Conn(ctx)
		if err != nil {
			return nil, describeOpenError(err)
		}
		*p = conn
	}

	var mode string
	if err := c.write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, describeOpenError(err)
	}
	if from := mode; !strings.EqualFold(from, "wal") {
		if err := c.write.QueryRowContext(ctx, "PRAGMA journal_mode = wal").Scan(&mode); err != nil {
			return nil, fmt.Errorf("switch database from %s to WAL journal mode: %w", from, err)
		}
		if !strings.EqualFold(mode, "wal") {
			return nil, fmt.Errorf("database stays in %s journal mode: close other connections so it can switch to WAL", mode)
		}
		if onWALSwitch != nil {
			onWALSwitch(from)
		}
	}
	if err := configureWriteConn(ctx, c.write); err != nil {
		return nil, err
	}
	if err := retryBusy(ctx, func() error {
		_, err := c.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER);
CREATE TABLE IF NOT EXISTS _litestream_lock (id INTEGER);`)
		return err
	}); err != nil {
		return nil, fmt.Errorf("create litestream tables: %w", err)
	}
	// With the WAL mode set, SQLite has created the -wal and -shm.
	ids, err := statDBFiles(path)
	if err != nil {
		return nil, err
	}
	c.ids = ids
	if err := c.closeConn(&c.write); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// configureWriteConn sets what the write connection needs on each open.
// synchronous comes first: it reads the schema, which must wait out a busy
// wal-index (the pool's busy timeout) rather than fail at once.
func configureWriteConn(ctx context.Context, conn *sql.Conn) error {
	// Our commits are only the _litestream_seq row that restarts the WAL,
	// whose durability nothing needs: NORMAL drops their fsync (SQLite
	// still syncs a restarted WAL's header, and keeps the database
	// consistent), time the application would wait around a checkpoint.
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err != nil {
		return fmt.Errorf("set synchronous: %w", err)
	}
	// The write connection polls for the lock itself (retryBusy) rather
	// than sleeping in SQLite's busy handler.
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = 0"); err != nil {
		return fmt.Errorf("set busy timeout: %w", err)
	}
	return nil
}

// statDBFiles returns the identities of the database file, -wal and -shm
// at path.
func statDBFiles(path string) ([3]os.FileInfo, error) {
	var ids [3]os.FileInfo
	for i, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			return ids, fmt.Errorf("stat %s: %w", p, err)
		}
		ids[i] = fi
	}
	return ids, nil
}

// errFilesReplaced means a connection opened after the first ones found
// another database file, -wal or -shm at the path (invariant 2).
var errFilesReplaced = errors.New("the database's files were replaced since the engine opened them")

// openConn opens the connection *p for one operation, when it is not open
// yet. The files at the path are checked after the open: a connection
// that may have opened other files than read's is closed unused
// (invariant 2).
func (c *dbConns) openConn(ctx context.Context, p **sql.Conn) error {
	if *p != nil {
		return nil
	}
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open connection: %w", err)
	}
	ids, err := statDBFiles(c.path)
	if err == nil {
		for i := range ids {
			if !os.SameFile(ids[i], c.ids[i]) {
				err = errFilesReplaced
			}
		}
	}
	if err == nil && p == &c.write {
		err = configureWriteConn(ctx, conn)
	}
	if err != nil {
		conn.Close()
		return fmt.Errorf("open connection: %w", err)
	}
	*p = conn
	return nil
}

// closeConn closes the connection *p, if open, and forgets it.
func (c *dbConns) closeConn(p **sql.Conn) error {
	if *p == nil {
		return nil
	}
	err := (*p).Close()
	*p = nil
	if err != nil {
		return fmt.Errorf("close connection: %w", err)
	}
	return nil
}

// describeOpenError turns SQLite's first error on a file into advice.
func describeOpenError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "not a database"):
		return fmt.Errorf("file is not a SQLite database: %w", err)
	case strings.Contains(msg, "unable to open"):
		return fmt.Errorf("cannot open database (check the path and permissions): %w", err)
	}
	return fmt.Errorf("read database: %w", err)
}

// pageSize returns the database page size.
func (c *dbConns) pageSize(ctx context.Context) (int, error) {
	var n int
	if err := c.read.QueryRowContext(ctx, "PRAGMA page_size").Scan(&n); err != nil {
		return 0, fmt.Errorf("read page size: %w", err)
	}
	return n, nil
}

// acquireRead opens the long-running read transaction.
func (c *dbConns) acquireRead(ctx context.Context) error {
	if c.readHeld {
		return nil
	}
	if err := beginRead(ctx, c.read); err != nil {
		return err
	}
	c.readHeld = true
	return nil
}

// beginRead opens a read transaction on conn and takes its snapshot.
func beginRead(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		rollbackFailedBegin(conn)
		return fmt.Errorf("begin read transaction: %w", err)
	}
	// A deferred transaction takes its snapshot at the first read.
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(1) FROM _litestream_seq").Scan(&n); err != nil {
		_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		return fmt.Errorf("take read lock: %w", err)
	}
	return nil
}

// rollbackFailedBegin ends whatever transaction a failed BEGIN may have
// left open. The driver reports a statement that completed just as its
// context ended as failed, with the context's error, so a BEGIN IMMEDIATE
// "failed" that way holds the write lock, and would block the application
// until this connection closes. The rollback runs on a context that cannot
// be cancelled; with no transaction open it fails harmlessly.
func rollbackFailedBegin(conn *sql.Conn) {
	_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
}

// advanceRead moves the read transaction to the WAL's end: the new one
// begins on the spare connection before the old one ends, so no moment is
// left in which another connection could restart the WAL.
//
// The caller must know that the WAL holds a frame past the old
// transaction's snapshot. Then SQLite cannot have checkpointed the whole
// WAL (the old snapshot caps any checkpoint, or, on read-mark 0, forbids
// one), so the new transaction gets a read mark of its own, which, like the
// old one, keeps every other connection from restarting the WAL.
func (c *dbConns) advanceRead(ctx context.Context) error {
	if !c.readHeld {
		return c.acquireRead(ctx)
	}
	if err := c.openConn(ctx, &c.spare); err != nil {
		return err
	}
	if err := beginRead(ctx, c.spare); err != nil {
		return errors.Join(err, c.closeConn(&c.spare))
	}
	c.read, c.spare = c.spare, c.read
	if _, err := c.spare.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		// The old read transaction stays open on spare, which close
		// rolls back: keep the connection until then.
		return fmt.Errorf("end old read transaction: %w", err)
	}
	return c.closeConn(&c.spare)
}

// releaseRead ends the read transaction. It ignores ctx: a cancelled
// rollback would leave the transaction open behind our back.
func (c *dbConns) releaseRead(_ context.Context) error {
	if !c.readHeld {
		return nil
	}
	if _, err := c.read.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		return fmt.Errorf("release read lock: %w", err)
	}
	c.readHeld = false
	return nil
}

// lockWrite takes the database's write lock: an immediate transaction with
// a write to _litestream_lock, rolled back by unlockWrite.
func (c *dbConns) lockWrite(ctx context.Context) error {
	return c.lockWriteFor(ctx, writeLockTimeout)
}

// tryLockWrite is lockWrite waiting only up to limit; it reports false,
// and no error, when the lock stayed taken.
func (c *dbConns) tryLockWrite(ctx context.Context, limit time.Duration) (bool, error) {
	err := c.lockWriteFor(ctx, limit)
	if isBusy(err) {
		return false, nil
	}
	return err == nil, err
}

func (c *dbConns) lockWriteFor(ctx context.Context, limit time.Duration) error {
	if err := c.openConn(ctx, &c.write); err != nil {
		return fmt.Errorf("take write lock: %w", err)
	}
	if err := c.lockWriteOpen(ctx, limit); err != nil {
		return errors.Join(err, c.closeConn(&c.write))
	}
	return nil
}

func (c *dbConns) lockWriteOpen(ctx context.Context, limit time.Duration) error {
	if err := retryBusyFor(ctx, limit, func() error {
		_, err := c.write.ExecContext(ctx, "BEGIN IMMEDIATE")
		return err
	}); err != nil {
		rollbackFailedBegin(c.write)
		return fmt.Errorf("take write lock: %w", err)
	}
	if _, err := c.write.ExecContext(ctx, "INSERT INTO _litestream_lock (id) VALUES (1)"); err != nil {
		_, _ = c.write.ExecContext(context.Background(), "ROLLBACK")
		return fmt.Errorf("take write lock: %w", err)
	}
	c.writeHeld = true
	return nil
}

// unlockWrite rolls back the write-lock transaction. It ignores ctx: a
// cancelled rollback would keep every application writer blocked.
func (c *dbConns) unlockWrite(_ context.Context) error {
	if !c.writeHeld {
		return nil
	}
	if _, err := c.write.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		return fmt.Errorf("release write lock: %w", err)
	}
	c.writeHeld = false
	return c.closeConn(&c.write)
}

// bumpSeq commits a one-row write to _litestream_seq, which puts a frame
// (and, on an empty or fully checkpointed WAL, a new header) in the WAL.
// shrinkWAL asks SQLite to truncate an oversized WAL file when this write
// restarts it.
func (c *dbConns) bumpSeq(ctx context.Context, shrinkWAL bool) (err error) {
	if !c.writeHeld {
		if err := c.openConn(ctx, &c.write); err != nil {
			return fmt.Errorf("write _litestream_seq: %w", err)
		}
		defer func() { err = errors.Join(err, c.closeConn(&c.write)) }()
	}
	if shrinkWAL {
		if _, err := c.write.ExecContext(ctx, "PRAGMA journal_size_limit = 0"); err != nil {
			return fmt.Errorf("set journal size limit: %w", err)
		}
		defer c.write.ExecContext(context.Background(), "PRAGMA journal_size_limit = -1") //nolint:errcheck
	}
	if err := retryBusy(ctx, func() error {
		_, err := c.write.ExecContext(ctx, `INSERT INTO _litestream_seq (id, seq) VALUES (1, 1)
ON CONFLICT (id) DO UPDATE SET seq = seq + 1`)
		return err
	}); err != nil {
		return fmt.Errorf("write _litestream_seq: %w", err)
	}
	return nil
}

// checkpointPassive runs a PASSIVE checkpoint and returns SQLite's answer.
func (c *dbConns) checkpointPassive(ctx context.Context) (ckptResult, error) {
	if err := c.openConn(ctx, &c.ckpt); err != nil {
		return ckptResult{}, fmt.Errorf("checkpoint: %w", err)
	}
	defer c.closeConn(&c.ckpt) //nolint:errcheck // a close error says nothing of the checkpoint
	var busy, logFrames, done int
	if err := c.ckpt.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &done); err != nil {
		return ckptResult{}, fmt.Errorf("checkpoint: %w", err)
	}
	return ckptResult{busy: busy != 0, walFrames: logFrames, done: done}, nil
}

// ckptResult is what a checkpoint reports.
type ckptResult struct {
	busy      bool // another connection was checkpointing
	walFrames int  // frames in the WAL
	done      int  // frames copied into the database, by this or earlier checkpoints
}

// complete reports whether every frame of the WAL is in the database, so
// that the next write restarts the WAL.
func (r ckptResult) complete() bool {
	return !r.busy && r.walFrames >= 0 && r.done == r.walFrames
}

// close rolls back and closes every connection.
func (c *dbConns) close() error {
	ctx := context.Background()
	var errs []error
	if c.writeHeld {
		errs = append(errs, c.unlockWrite(ctx))
	}
	if c.readHeld {
		errs = append(errs, c.releaseRead(ctx))
	}
	for _, conn := range []*sql.Conn{c.read, c.spare, c.write, c.ckpt} {
		if conn != nil {
			errs = append(errs, conn.Close())
		}
	}
	errs = append(errs, c.db.Close())
	return errors.Join(errs...)
}
