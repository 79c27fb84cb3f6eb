package sqlwriter

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
)

// Writer commits numbered transactions to a database in WAL mode.
type Writer struct {
	db  *sql.DB
	rng *rand.Rand
	tx  int
}

// Open opens (creating if needed) the database. autocheckpoint sets the
// application's own wal_autocheckpoint (0 turns it off, <0 keeps SQLite's).
func Open(ctx context.Context, path string, autocheckpoint int) (*Writer, error) {
	return OpenMode(ctx, path, autocheckpoint, "wal")
}

// OpenMode is Open with a journal mode ("wal", "delete", ...).
func OpenMode(ctx context.Context, path string, autocheckpoint int, journalMode string) (*Writer, error) {
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?_txlock=immediate&_pragma=busy_timeout(30000)&_pragma=journal_mode(" + journalMode + ")"
	if autocheckpoint >= 0 {
		dsn += fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)", autocheckpoint)
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, Schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create table: %w", err)
	}
	w := &Writer{db: db, rng: rand.New(rand.NewPCG(1, 2))}
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(tx), 0) FROM t").Scan(&w.tx); err != nil {
		db.Close()
		return nil, err
	}
	return w, nil
}

// LastTx returns the number of the last committed transaction.
func (w *Writer) LastTx() int { return w.tx }

// DB returns the underlying handle, for checkpoints and other app behaviour.
func (w *Writer) DB() *sql.DB { return w.db }

// Commit writes transaction LastTx()+1 with nrows rows of payloadSize bytes
// each (random content) and returns its number once committed.
func (w *Writer) Commit(ctx context.Context, nrows, payloadSize int) (int, error) {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	// Other writer processes may share the database: number this
	// transaction inside it (the transaction holds the write lock). The
	// newest row (largest seq) holds the largest tx; reading it is a
	// b-tree descent where MAX(tx) would scan the table on every commit.
	var n int
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

// Close closes the database.
func (w *Writer) Close() error { return w.db.Close() }
