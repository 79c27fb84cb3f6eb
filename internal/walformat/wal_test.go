package walformat_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/litestream-go/litestream/internal/walformat"
	"github.com/litestream-go/litestream/internal/walformat/walformattest"
)

var buildWAL = walformattest.Build

func TestReader_BothByteOrders(t *testing.T) {
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		wal := buildWAL(bo, 512, 9)
		hdr, err := walformat.ParseHeader(wal)
		if err != nil {
			t.Fatalf("%v: %v", bo, err)
		}
		if hdr.ByteOrder() != bo {
			t.Fatalf("byte order = %v, want %v", hdr.ByteOrder(), bo)
		}
		rd := walformat.NewReader(bytes.NewReader(wal[walformat.HeaderSize:]), hdr, hdr.Checksum1, hdr.Checksum2)
		commits := 0
		for i := 0; ; i++ {
			fh, frame, err := rd.Next()
			if err == io.EOF {
				if i != 9 {
					t.Fatalf("%v: read %d frames, want 9", bo, i)
				}
				break
			} else if err != nil {
				t.Fatalf("%v: frame %d: %v", bo, i, err)
			}
			if len(frame) != 512+walformat.FrameHeaderSize || fh.Pgno != uint32(i%5+1) {
				t.Fatalf("%v: frame %d: pgno %d len %d", bo, i, fh.Pgno, len(frame))
			}
			if fh.IsCommit() {
				commits++
			}
		}
		if commits != 3 {
			t.Fatalf("commits = %d", commits)
		}
	}
}

func TestReader_Invalid(t *testing.T) {
	wal := buildWAL(binary.LittleEndian, 512, 6)
	hdr, _ := walformat.ParseHeader(wal)
	fs := int(hdr.FrameSize())
	const hs = walformat.HeaderSize
	cases := map[string]func([]byte) []byte{
		"flipped page byte": func(b []byte) []byte { b[hs+2*fs+100] ^= 1; return b },
		"wrong salt":        func(b []byte) []byte { b[hs+2*fs+8] ^= 1; return b },
		"truncated frame":   func(b []byte) []byte { return b[:hs+2*fs+50] },
		"wrong checksum":    func(b []byte) []byte { b[hs+2*fs+16] ^= 1; return b },
		"frame from elsewhere": func(b []byte) []byte {
			other := buildWAL(binary.LittleEndian, 512, 6)
			copy(b[hs+2*fs:], other[hs+4*fs:hs+5*fs])
			return b
		},
	}
	for name, mutate := range cases {
		b := mutate(append([]byte(nil), wal...))
		rd := walformat.NewReader(bytes.NewReader(b[hs:]), hdr, hdr.Checksum1, hdr.Checksum2)
		n := 0
		var err error
		for {
			if _, _, err = rd.Next(); err != nil {
				break
			}
			n++
		}
		if n != 2 || !errors.Is(err, walformat.ErrInvalidFrame) {
			t.Errorf("%s: read %d valid frames then %v; want 2 then ErrInvalidFrame", name, n, err)
		}
	}
}

func TestParseHeader_Errors(t *testing.T) {
	good := buildWAL(binary.LittleEndian, 4096, 0)
	for name, mutate := range map[string]func([]byte){
		"magic":     func(b []byte) { b[3] = 0 },
		"version":   func(b []byte) { b[7] ^= 1 },
		"page size": func(b []byte) { binary.BigEndian.PutUint32(b[8:], 1000) },
		"checksum":  func(b []byte) { b[31] ^= 1 },
	} {
		b := append([]byte(nil), good...)
		mutate(b)
		if _, err := walformat.ParseHeader(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := walformat.ParseHeader(good[:20]); err == nil {
		t.Error("short header accepted")
	}
}

// TestHasFrame_FrameChecksumAt: both read a frame header at an offset and
// accept it only with the salts of the WAL's own header.
func TestHasFrame_FrameChecksumAt(t *testing.T) {
	wal := buildWAL(binary.BigEndian, 512, 4)
	hdr, err := walformat.ParseHeader(wal)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(wal)
	fs := hdr.FrameSize()
	for i := int64(0); i < 4; i++ {
		if !walformat.HasFrame(r, hdr, walformat.HeaderSize+i*fs) {
			t.Errorf("no frame %d", i)
		}
	}
	if walformat.HasFrame(r, hdr, walformat.HeaderSize+4*fs) {
		t.Error("frame past the end")
	}
	rd := walformat.NewReader(bytes.NewReader(wal[walformat.HeaderSize:]), hdr, hdr.Checksum1, hdr.Checksum2)
	for i := int64(1); i <= 4; i++ {
		if _, _, err := rd.Next(); err != nil {
			t.Fatal(err)
		}
		w1, w2 := rd.Checksum()
		s1, s2, err := walformat.FrameChecksumAt(r, hdr, walformat.HeaderSize+i*fs)
		if err != nil || s1 != w1 || s2 != w2 {
			t.Errorf("frame %d: checksum %08x %08x %v, want %08x %08x", i, s1, s2, err, w1, w2)
		}
	}
	other := hdr
	other.Salt1++
	if walformat.HasFrame(r, other, walformat.HeaderSize) {
		t.Error("frame of another incarnation accepted")
	}
	if _, _, err := walformat.FrameChecksumAt(r, other, walformat.HeaderSize+fs); err == nil {
		t.Error("checksum of another incarnation accepted")
	}
}

func TestReadDBPageSize(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hdr := make([]byte, 100)
	copy(hdr, "SQLite format 3\x00")
	for _, c := range []struct {
		field uint16
		want  int
	}{{4096, 4096}, {512, 512}, {1, 65536}} {
		binary.BigEndian.PutUint16(hdr[16:], c.field)
		if n, err := walformat.ReadDBPageSize(write("db", hdr)); err != nil || n != c.want {
			t.Errorf("page size field %d: %d %v, want %d", c.field, n, err, c.want)
		}
	}
	if _, err := walformat.ReadDBPageSize(write("short", hdr[:50])); err == nil {
		t.Error("short file accepted")
	}
	if _, err := walformat.ReadDBPageSize(write("other", make([]byte, 100))); err == nil {
		t.Error("file without the SQLite magic accepted")
	}
}
