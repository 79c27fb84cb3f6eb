package litestream

import (
	"io"

	"github.com/litestream-go/litestream/internal/walformat"
)

// The WAL format's names from before it moved to internal/walformat, for
// restore_apply.go only, which is being rewritten alongside this move: they
// go once it calls walformat itself (and drops its readDBPageSize for
// walformat.ReadDBPageSize).
const (
	WALHeaderSize      = walformat.HeaderSize      // see walformat.HeaderSize
	WALFrameHeaderSize = walformat.FrameHeaderSize // see walformat.FrameHeaderSize
)

// ParseWALHeader is walformat.ParseHeader.
func ParseWALHeader(b []byte) (walformat.Header, error) { return walformat.ParseHeader(b) }

// NewWALReader is walformat.NewReader.
func NewWALReader(r io.Reader, hdr walformat.Header, s1, s2 uint32) *walformat.Reader {
	return walformat.NewReader(r, hdr, s1, s2)
}
