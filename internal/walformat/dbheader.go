package walformat

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
)

// ReadDBPageSize reads the page size from the header of the SQLite
// database file at path: the size every frame of its WAL must have.
func ReadDBPageSize(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	hdr := make([]byte, 100)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return 0, errors.New("not a SQLite database (shorter than its header)")
	}
	if string(hdr[:16]) != "SQLite format 3\x00" {
		return 0, errors.New("not a SQLite database (bad header)")
	}
	n := int(binary.BigEndian.Uint16(hdr[16:]))
	if n == 1 {
		n = 65536
	}
	return n, nil
}
