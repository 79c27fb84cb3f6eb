package sqlwriter

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"
)

// Options say how a Writer uses its database, as different applications do.
type Options struct {
	// Autocheckpoint is the application's own wal_autocheckpoint (0 turns
	// it off, <0 keeps SQLite's).
	Autocheckpoint int
	// JournalMode is the journal mode set on every connection ("wal",
	// "delete", ...; empty means "wal").
	JournalMode string
	// ConnPerTx opens a connection for each transaction and closes it once
	// the transaction ends, as scripts and short-lived processes do. The
	// close of a database's last connection makes SQLite checkpoint and
	// delete the WAL and -shm, which a replicator must survive.
	ConnPerTx bool
	// BusyTimeout is how long a statement waits for another connection's
	// lock (0: 30 seconds).
	BusyTimeout time.Duration
}

// Writer commits numbered transactions to a database.
type Writer struct {
	dsn   string
	db    *sql.DB // the connection kept open; nil with ConnPerTx
	perTx bool
	rng   *rand.Rand
	tx    int
}

// Open opens (creating if needed) the database in WAL mode. autocheckpoint
// sets the application's own wal_autocheckpoint (0 turns it off, <0 keeps
// SQLite's).
func Open(ctx context.Context, path string, autocheckpoint int) (*Writer, error) {
	return OpenWith(ctx, path, Options{Autocheckpoint: autocheckpoint})
}

// OpenMode is Open with a journal mode ("wal", "delete", ...).
func OpenMode(ctx context.Context, path string, autocheckpoint int, journalMode string) (*Writer, error) {
	return OpenWith(ctx, path, Options{Autocheckpoint: autocheckpoint, JournalMode: journalMode})
}

// OpenWith opens (creating if needed) the database and its table. With
// o.ConnPerTx no connection stays open once it returns.
func OpenWith(ctx context.Context, path string, o Options) (*Writer, error) {
	if o.JournalMode == "" {
		o.JournalMode = "wal"
	}
	if o.BusyTimeout == 0 {
		o.BusyTimeout = 30 * time.Second
	}
	dsn := fmt.Sprintf("file:%s?_txlock=immediate&_pragma=busy_timeout(%d)&_pragma=journal_mode(%s)",
		(&url.URL{Path: path}).EscapedPath(), o.BusyTimeout.Milliseconds(), o.JournalMode)
	if o.Autocheckpoint >= 0 {
		dsn += fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)", o.Autocheckpoint)
	}
	w := &Writer{dsn: dsn, perTx: o.ConnPerTx, rng: rand.New(rand.NewPCG(1, 2))}
	db, err := w.open()
	if err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, Schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create table: %w", err)
	}
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(tx), 0) FROM t").Scan(&w.tx); err != nil {
		db.Close()
		return nil, err
	}
	if w.perTx {
		if err := db.Close(); err != nil {
			return nil, err
		}
	} else {
		w.db = db
	}
	return w, nil
}

// open returns a handle of one connection, which it does not keep.
func (w *Writer) open() (*sql.DB, error) {
	db, err := sql.Open("sqlite", w.dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// conn returns the handle a transaction or statement runs on, and the
// function that releases it: with ConnPerTx a new connection, closed by
// release (its close error is the statement's error: a close that fails
// may leave the WAL as it was).
func (w *Writer) conn() (db *sql.DB, release func() error, err error) {
	if !w.perTx {
		return w.db, func() error { return nil }, nil
	}
	db, err = w.open()
	if err != nil {
		return nil, nil, err
	}
	return db, db.Close, nil
}

// LastTx returns the number of the last committed transaction.
func (w *Writer) LastTx() int { return w.tx }

// DB returns the connection the writer keeps, for checkpoints and other
// application behaviour; nil with ConnPerTx (use Exec).
func (w *Writer) DB() *sql.DB { return w.db }

// Exec runs one statement, on the kept connection or, with ConnPerTx, on a
// connection of its own, opened and closed around it.
func (w *Writer) Exec(ctx context.Context, stmt string) (err error) {
	db, release, err := w.conn()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := release(); err == nil && cerr != nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

// Commit writes transaction LastTx()+1 with nrows rows of payloadSize bytes
// each (random content) and returns its number once committed. With
// ConnPerTx the transaction's connection is closed before it returns, and
// an error closing it is returned with the number: the transaction is
// committed all the same.
func (w *Writer) Commit(ctx context.Context, nrows, payloadSize int) (n int, err error) {
	db, release, err := w.conn()
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := release(); err == nil && cerr != nil {
			err = fmt.Errorf("close after commit: %w", cerr)
		}
	}()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	// Other writer processes may share the database: number this
	// transaction inside it (the transaction holds the write lock). The
	// newest row (largest seq) holds the largest tx; reading it is a
	// b-tree descent where MAX(tx) would scan the table on every commit.
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE((SELECT tx FROM t ORDER BY seq DESC LIMIT 1), 0) + 1").Scan(&n); err != nil {
		return 0, err
	}
	stmt, err := tx.PrepareContext(ctx, "INSERT INTO t (tx, nrows, payload, sum) VALUES (?, ?, ?, ?)")
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	payload := make([]byte, payloadSize)
	for i := 0; i < nrows; i++ {
		for j := range payload {
			payload[j] = byte(w.rng.Uint32())
		}
		if _, err := stmt.ExecContext(ctx, n, nrows, payload, Sum(payload)); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	w.tx = n
	return n, nil
}

// Close closes the kept connection, as an application does when it exits:
// SQLite then checkpoints and deletes the WAL if no other connection has
// the database open.
func (w *Writer) Close() error {
	if w.db == nil {
		return nil
	}
	return w.db.Close()
}
