package storeclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
)

// cutReader yields data from off, then fails after n bytes.
type cutReader struct {
	data []byte
	off  int
	left int
}

func (r *cutReader) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	if r.left == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p[:min(len(p), r.left)], r.data[r.off:])
	r.off += n
	r.left -= n
	return n, nil
}

func (r *cutReader) Close() error { return nil }

// TestResumableReader: a body cut short is reopened at the offset
// reached, so the whole object is read; a body cut more than MaxResumes
// times fails with ReadFailed's words.
func TestResumableReader(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100)
	for _, tc := range []struct {
		cuts    int
		wantErr bool
	}{{0, false}, {MaxResumes, false}, {MaxResumes + 1, true}} {
		var offs []int64
		opens := 0
		open := func(ctx context.Context, off int64) (io.ReadCloser, error) {
			offs = append(offs, off)
			opens++
			left := 100
			if opens > tc.cuts {
				left = len(data)
			}
			return &cutReader{data: data, off: int(off), left: left}, nil
		}
		first, _ := open(context.Background(), 0)
		offs = offs[:0]
		r := NewResumableReader(context.Background(), first, int64(len(data)), Reopen{
			Open:       open,
			OpenFailed: func(err error, off int64) error { return err },
			ReadFailed: func(err error, off int64, resumes int) error {
				return fmt.Errorf("read at byte %d (resumed %d times): %w", off, resumes, err)
			},
		})
		got, err := io.ReadAll(r)
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("resumed %d times", MaxResumes)) {
				t.Fatalf("%d cuts: err = %v", tc.cuts, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d cuts: %d bytes, %v", tc.cuts, len(got), err)
		}
		for i, off := range offs {
			if off != int64(100*(i+1)) {
				t.Fatalf("%d cuts: reopened at %v", tc.cuts, offs)
			}
		}
	}
}

// TestForEach: every name is done once; the first error is returned; a
// context ended first gives its cause.
func TestForEach(t *testing.T) {
	names := make([]string, 100)
	for i := range names {
		names[i] = fmt.Sprint(i)
	}
	var n atomic.Int64
	if err := ForEach(context.Background(), 4, names, func(context.Context, string) error { n.Add(1); return nil }); err != nil || n.Load() != 100 {
		t.Fatalf("%d done, %v", n.Load(), err)
	}
	boom := errors.New("boom")
	n.Store(0)
	err := ForEach(context.Background(), 4, names, func(_ context.Context, name string) error {
		n.Add(1)
		if name == "10" {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("%d done, %v", n.Load(), err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	gone := errors.New("caller gone")
	cancel(gone)
	if err := ForEach(ctx, 4, names, func(context.Context, string) error { return nil }); !errors.Is(err, gone) {
		t.Fatalf("err = %v", err)
	}
}

// TestTempName: TempName's names, and only they, are temporary names.
func TestTempName(t *testing.T) {
	n := TempName("00000001.snapshot.lz4")
	if !IsTempName(n) || !strings.HasPrefix(n, ".00000001.snapshot.lz4.") {
		t.Fatalf("%q", n)
	}
	for _, s := range []string{"00000001.snapshot.lz4", ".x.tmp", ".a.0123456789abcdeg.tmp", "a.0123456789abcdef.tmp"} {
		if IsTempName(s) {
			t.Fatalf("%q taken for a temporary name", s)
		}
	}
}
