package litestream

import "net/url"

// sqliteDSN returns the DSN that opens an existing database (never creates
// one), with auto-checkpoint off and a busy timeout for the write lock.
func sqliteDSN(path string) string {
	u := url.URL{Path: path}
	return "file:" + u.EscapedPath() + "?mode=rw&_pragma=busy_timeout(5000)&_pragma=wal_autocheckpoint(0)"
}
