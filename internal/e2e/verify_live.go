package e2e

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// verifyLive checks the live database the way a restore is checked and
// returns its last transaction.
func verifyLive(path string) (int, error) {
	return sqlwriter.Verify(context.Background(), path)
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
