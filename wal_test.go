package litestream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// buildWAL makes a WAL image in the given checksum byte order with nframes
// frames of the page size; every third frame commits.
func buildWAL(bo binary.ByteOrder, pageSize uint32, nframes int) []byte {
	magic := uint32(walMagicLE)
	if bo == binary.BigEndian {
		magic = walMagicBE
	}
	h := WALHeader{Magic: magic, Version: walVersion, PageSize: pageSize, CheckpointSeq: 3, Salt1: 0x11223344, Salt2: 0x55667788}
	b := h.Encode()
	h.Checksum1, h.Checksum2 = WALChecksum(bo, 0, 0, b[:24])
	var buf bytes.Buffer
	buf.Write(h.Encode())
	s1, s2 := h.Checksum1, h.Checksum2
	for i := 0; i < nframes; i++ {
		fh := make([]byte, WALFrameHeaderSize)
		binary.BigEndian.PutUint32(fh[0:], uint32(i%5+1))
		if i%3 == 2 {
			binary.BigEndian.PutUint32(fh[4:], 5)
		}
		binary.BigEndian.PutUint32(fh[8:], h.Salt1)
		binary.BigEndian.PutUint32(fh[12:], h.Salt2)
		page := bytes.Repeat([]byte{byte(i)}, int(pageSize))
		s1, s2 = WALChecksum(bo, s1, s2, fh[:8])
		s1, s2 = WALChecksum(bo, s1, s2, page)
		binary.BigEndian.PutUint32(fh[16:], s1)
		binary.BigEndian.PutUint32(fh[20:], s2)
		buf.Write(fh)
		buf.Write(page)
	}
	return buf.Bytes()
}

func TestWALReader_BothByteOrders(t *testing.T) {
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		wal := buildWAL(bo, 512, 9)
		hdr, err := ParseWALHeader(wal)
		if err != nil {
			t.Fatalf("%v: %v", bo, err)
		}
		if hdr.ByteOrder() != bo {
			t.Fatalf("byte order = %v, want %v", hdr.ByteOrder(), bo)
		}
		rd := NewWALReader(bytes.NewReader(wal[WALHeaderSize:]), hdr, hdr.Checksum1, hdr.Checksum2)
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
			if len(frame) != 512+WALFrameHeaderSize || fh.Pgno != uint32(i%5+1) {
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

func TestWALReader_Invalid(t *testing.T) {
	wal := buildWAL(binary.LittleEndian, 512, 6)
	hdr, _ := ParseWALHeader(wal)
	fs := int(hdr.FrameSize())
	cases := map[string]func([]byte) []byte{
		"flipped page byte": func(b []byte) []byte { b[WALHeaderSize+2*fs+100] ^= 1; return b },
		"wrong salt":        func(b []byte) []byte { b[WALHeaderSize+2*fs+8] ^= 1; return b },
		"truncated frame":   func(b []byte) []byte { return b[:WALHeaderSize+2*fs+50] },
		"wrong checksum":    func(b []byte) []byte { b[WALHeaderSize+2*fs+16] ^= 1; return b },
		"frame from elsewhere": func(b []byte) []byte {
			other := buildWAL(binary.LittleEndian, 512, 6)
			copy(b[WALHeaderSize+2*fs:], other[WALHeaderSize+4*fs:WALHeaderSize+5*fs])
			return b
		},
	}
	for name, mutate := range cases {
		b := mutate(append([]byte(nil), wal...))
		rd := NewWALReader(bytes.NewReader(b[WALHeaderSize:]), hdr, hdr.Checksum1, hdr.Checksum2)
		n := 0
		var err error
		for {
			if _, _, err = rd.Next(); err != nil {
				break
			}
			n++
		}
		if n != 2 || !errors.Is(err, ErrInvalidFrame) {
			t.Errorf("%s: read %d valid frames then %v; want 2 then ErrInvalidFrame", name, n, err)
		}
	}
}

func TestParseWALHeader_Errors(t *testing.T) {
	good := buildWAL(binary.LittleEndian, 4096, 0)
	for name, mutate := range map[string]func([]byte){
		"magic":     func(b []byte) { b[3] = 0 },
		"version":   func(b []byte) { b[7] ^= 1 },
		"page size": func(b []byte) { binary.BigEndian.PutUint32(b[8:], 1000) },
		"checksum":  func(b []byte) { b[31] ^= 1 },
	} {
		b := append([]byte(nil), good...)
		mutate(b)
		if _, err := ParseWALHeader(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseWALHeader(good[:20]); err == nil {
		t.Error("short header accepted")
	}
}
