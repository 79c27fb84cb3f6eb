package e2e

import (
	"context"
	"database/sql"

	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// verifyLive checks the live database the way a restore is checked and
// returns its last transaction.
func verifyLive(path string) (int, error) {
	return sqlwriter.Verify(context.Background(), path)
}

// runSQL runs one statement on a database from this process.
func runSQL(path, stmt string) (int64, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	res, err := db.Exec(stmt)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
