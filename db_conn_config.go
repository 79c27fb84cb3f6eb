package litestream

import (
	"errors"
	"fmt"
	"reflect"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// setNoCheckpointOnClose turns on SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE for one
// of the engine's connections (dc, the driver's connection, as given by
// sql.Conn.Raw), so that closing it never checkpoints: the engine's close
// must not write into the application's database, least of all from a WAL
// that may no longer be the one at the -wal path. Without it, the last
// connection to close in the whole system checkpoints the WAL.
//
// The driver has no call for sqlite3_db_config, so this reads the SQLite
// handle from its connection's unexported field db. Should a driver upgrade
// rename the field, this fails, and with it every open, never silently.
func setNoCheckpointOnClose(dc any) error {
	v := reflect.ValueOf(dc)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("unexpected driver connection type %T", dc)
	}
	f := v.Elem().FieldByName("db")
	if !f.IsValid() || f.Kind() != reflect.Uintptr || f.Uint() == 0 {
		return fmt.Errorf("driver connection %T has no SQLite handle field db", dc)
	}
	handle := uintptr(f.Uint())
	tls := libc.NewTLS()
	defer tls.Close()
	// The variadic arguments (int onoff, int *pRes), in libc's 8-byte slots.
	va := libc.Xmalloc(tls, 16)
	if va == 0 {
		return errors.New("out of memory")
	}
	defer libc.Xfree(tls, va)
	if rc := sqlite3.Xsqlite3_db_config(tls, handle, sqlite3.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, libc.VaList(va, int32(1), uintptr(0))); rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("sqlite3_db_config(SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE) returned %d", rc)
	}
	return nil
}
