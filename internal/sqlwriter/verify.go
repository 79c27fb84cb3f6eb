// Package sqlwriter is the application used by tests: a real SQLite writer
// whose transactions can be checked after a restore. Each transaction tx
// inserts nrows rows (seq, tx, nrows, payload, sum) where sum is the SHA-256
// of the payload, so a restored database proves it holds whole transactions
// 1..m and nothing torn.
package sqlwriter

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"

	_ "modernc.org/sqlite" // SQLite driver
)

// Schema is the table the writer fills.
const Schema = `CREATE TABLE IF NOT EXISTS t (
	seq INTEGER PRIMARY KEY,
	tx INTEGER NOT NULL,
	nrows INTEGER NOT NULL,
	payload BLOB NOT NULL,
	sum TEXT NOT NULL
)`

// Sum returns the checksum stored beside a payload.
func Sum(payload []byte) string {
	h := sha256.Sum256(payload)
	return hex.EncodeToString(h[:8])
}

// Verify checks a database written by the writer: PRAGMA integrity_check is
// ok, and its rows are exactly transactions 1..m, each whole, with intact
// payloads. It returns m. It may run while other processes use the
// database (the busy timeout waits out their WAL recovery and locks).
func Verify(ctx context.Context, path string) (int, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var ic string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ic); err != nil {
		return 0, fmt.Errorf("integrity_check: %w", err)
	}
	if ic != "ok" {
		return 0, fmt.Errorf("integrity_check: %s", ic)
	}
	rows, err := db.QueryContext(ctx, "SELECT tx, nrows, payload, sum FROM t ORDER BY seq")
	if err != nil {
		return 0, fmt.Errorf("read rows: %w", err)
	}
	defer rows.Close()
	curTx, want, got := 0, 0, 0
	for rows.Next() {
		var tx, nrows int
		var payload []byte
		var sum string
		if err := rows.Scan(&tx, &nrows, &payload, &sum); err != nil {
			return 0, err
		}
		if Sum(payload) != sum {
			return 0, fmt.Errorf("tx %d: payload checksum mismatch", tx)
		}
		if tx != curTx {
			if got != want {
				return 0, fmt.Errorf("tx %d is torn: %d of %d rows", curTx, got, want)
			}
			if tx != curTx+1 {
				return 0, fmt.Errorf("transactions jump from %d to %d", curTx, tx)
			}
			curTx, want, got = tx, nrows, 0
		}
		got++
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if got != want {
		return 0, fmt.Errorf("tx %d is torn: %d of %d rows", curTx, got, want)
	}
	return curTx, nil
}
