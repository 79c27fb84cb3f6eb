package e2e

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"

	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// The application's own database must come out of every scenario as the
// application left it: PRAGMA integrity_check passes and every transaction
// it committed is there. A replicator that damages the database it watches
// has failed even if its replica restores; so every scenario ends with
// requireLive (or requireLiveApps) on the live database, beside the
// check of its restore.

// verifyLive checks the live database the way a restore is checked and
// returns its last transaction.
func verifyLive(path string) (int, error) {
	return sqlwriter.Verify(context.Background(), path)
}

// requireLive fails the test unless the application's database at path
// passes integrity_check and holds exactly the writer's transactions
// 1..want, each whole.
func requireLive(t testing.TB, path string, want int) {
	t.Helper()
	m, err := verifyLive(path)
	if err != nil {
		t.Fatalf("the application's own database is damaged: %v", err)
	}
	if m != want {
		t.Fatalf("the application's own database holds %d transactions, want the %d it committed", m, want)
	}
}

// zooSchema is the table the shell and Python applications fill: ids the
// test chooses, so it knows which rows each committed transaction added.
const zooSchema = "CREATE TABLE IF NOT EXISTS z (id INTEGER PRIMARY KEY, b BLOB NOT NULL)"

// appState is what a database holds of the test applications' writes, read
// once PRAGMA integrity_check passed.
type appState struct {
	txs  int              // whole transactions 1..txs of the sqlwriter's table t (0 without it)
	rows map[int64]string // a digest of every row of table z, by id (nil without it)
}

// readAppState checks a database (live or restored) and reads what the
// applications wrote to it: table t through sqlwriter.Verify (whole,
// numbered transactions with intact payloads), table z row by row.
func readAppState(path string) (appState, error) {
	var st appState
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return st, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tables := map[string]bool{}
	rows, err := db.Query("SELECT name FROM sqlite_master WHERE type = 'table'")
	if err != nil {
		return st, fmt.Errorf("read schema: %w", err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return st, err
		}
		tables[name] = true
	}
	if err := rows.Close(); err != nil {
		return st, err
	}
	if tables["t"] {
		// Verify runs integrity_check.
		if st.txs, err = sqlwriter.Verify(context.Background(), path); err != nil {
			return st, err
		}
	} else {
		var ic string
		if err := db.QueryRow("PRAGMA integrity_check").Scan(&ic); err != nil {
			return st, fmt.Errorf("integrity_check: %w", err)
		}
		if ic != "ok" {
			return st, fmt.Errorf("integrity_check: %s", ic)
		}
	}
	if !tables["z"] {
		return st, nil
	}
	st.rows = map[int64]string{}
	rows, err = db.Query("SELECT id, b FROM z")
	if err != nil {
		return st, fmt.Errorf("read table z: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			return st, err
		}
		h := sha256.Sum256(b)
		st.rows[id] = hex.EncodeToString(h[:8])
	}
	return st, rows.Err()
}

// zooWant is what the applications of a run committed.
type zooWant struct {
	txs        int            // the sqlwriter's last reported transaction
	txsAtLeast bool           // a sqlwriter was killed: one more may be committed
	ids        map[int64]bool // rows of table z whose transaction's process exited 0
	maybe      map[int64]bool // rows of table z whose process was killed: committed or not, whole
}

// killed reports whether an application was killed with SIGKILL.
func (w zooWant) killed() bool { return w.txsAtLeast || len(w.maybe) > 0 }

// check compares a database's state with what was committed, and returns
// a description of the first difference ("" if none).
func (w zooWant) check(st appState) string {
	if st.txs < w.txs || (!w.txsAtLeast && st.txs != w.txs) {
		return fmt.Sprintf("%d transactions of table t, want %d", st.txs, w.txs)
	}
	var missing, extra []int64
	for id := range w.ids {
		if _, ok := st.rows[id]; !ok {
			missing = append(missing, id)
		}
	}
	for id := range st.rows {
		if !w.ids[id] && !w.maybe[id] {
			extra = append(extra, id)
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		slices.Sort(missing)
		slices.Sort(extra)
		return fmt.Sprintf("table z: %d rows, %d committed ones missing %v, %d never committed %v",
			len(st.rows), len(missing), head(missing), len(extra), head(extra))
	}
	return ""
}

// head returns at most the first 10 ids.
func head(ids []int64) []int64 { return ids[:min(len(ids), 10)] }

// requireLiveApps fails the test unless the application's database passes
// integrity_check and holds what w says was committed; it returns the
// database's state.
func requireLiveApps(t testing.TB, path string, w zooWant, when string) appState {
	t.Helper()
	st, err := readAppState(path)
	if err != nil {
		t.Fatalf("%s: the application's own database is damaged: %v", when, err)
	}
	if d := w.check(st); d != "" {
		t.Fatalf("%s: the application's own database does not hold what was committed: %s", when, d)
	}
	return st
}

// restoreDiffers describes how a restored state differs from the
// application's database after replicate stopped (after), or "" if it does
// not: the same transactions, the same rows, byte for byte.
//
// One exception, when a writer was killed with SIGKILL (killed): SQLite
// writes a transaction's frames, commit frame included, to the WAL before
// the wal-index counts them, so a writer killed in between leaves a
// transaction no reader sees while other connections keep the wal-index,
// the engine's last sync included; the first open after every connection
// closed recovers the wal-index from the WAL and sees it. The restore may
// then lack what was added past running, the database as read while
// replicate ran with every application stopped, and nothing else.
func restoreDiffers(restored, running, after appState, killed bool) string {
	if killed && restored.txs >= running.txs && restored.txs <= after.txs {
		restored.txs = after.txs
	}
	if restored.txs != after.txs {
		return fmt.Sprintf("%d transactions of table t, the application's database %d", restored.txs, after.txs)
	}
	var differ []int64
	for id, d := range after.rows {
		if r, ok := restored.rows[id]; ok && r != d {
			differ = append(differ, id)
		} else if _, seen := running.rows[id]; !ok && (seen || !killed) {
			differ = append(differ, id)
		}
	}
	for id := range restored.rows {
		if _, ok := after.rows[id]; !ok {
			differ = append(differ, id)
		}
	}
	if len(differ) > 0 || (restored.rows == nil) != (after.rows == nil) {
		slices.Sort(differ)
		return fmt.Sprintf("table z: %d rows, the application's database %d; %d ids differ %v", len(restored.rows), len(after.rows), len(differ), head(differ))
	}
	return ""
}

// runSQL runs statements, in order, on one connection to a database.
func runSQL(path string, stmts ...string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// pageSize reads a database's page size.
func pageSize(path string) (int, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.QueryRow("PRAGMA page_size").Scan(&n)
	return n, err
}
