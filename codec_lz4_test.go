package litestream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/pierrec/lz4/v4"
)

func TestXXH32_KnownValues(t *testing.T) {
	for in, want := range map[string]uint32{
		"":    0x02CC5D05,
		"a":   0x550D7456,
		"abc": 0x32D153FF,
	} {
		if got := xxh32Sum([]byte(in)); got != want {
			t.Errorf("xxh32(%q) = %#x, want %#x", in, got, want)
		}
	}
	// Written in pieces, the same sum as at once.
	data := lz4TestInputs()["random"]
	var x xxh32
	x.reset()
	for p := data; len(p) > 0; {
		n := min(len(p), 1+len(p)%37)
		x.write(p[:n])
		p = p[n:]
	}
	if x.sum() != xxh32Sum(data) {
		t.Fatal("xxh32 of pieces differs")
	}
}

// lz4TestInputs are inputs of every kind the frame writer meets: WAL
// pages of random rows, repeated pages, random bytes, text, and sizes
// around the block size and the block format's end rules.
func lz4TestInputs() map[string][]byte {
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	text := bytes.Repeat([]byte("INSERT INTO t VALUES (1, 'litestream'); "), 8000)
	in := map[string][]byte{"random": random, "text": text, "empty": nil, "zeros": make([]byte, 200<<10)}
	for name, wal := range benchWALs() {
		in["wal "+name] = wal
	}
	for _, n := range []int{1, 5, 12, 13, 14, 17, 100, lz4BlockMax - 1, lz4BlockMax, lz4BlockMax + 1, 2*lz4BlockMax + 13} {
		in[fmt.Sprintf("text %d", n)] = text[:n]
		in[fmt.Sprintf("random %d", n)] = random[:n]
	}
	return in
}

// TestLZ4Writer_RoundTrip: every input, written at once, in odd pieces,
// and read from readers that return short reads, decodes with
// pierrec/lz4 (the reader v0.3 uses, which checks the content checksum)
// to the same bytes, and every block keeps the block format's end rules.
func TestLZ4Writer_RoundTrip(t *testing.T) {
	for name, data := range lz4TestInputs() {
		ways := map[string]func(w *encoder) error{
			"write": func(w *encoder) error { _, err := w.Write(data); return err },
			"pieces": func(w *encoder) error {
				for p := data; len(p) > 0; {
					n := min(len(p), 1+len(p)%70001)
					if _, err := w.Write(p[:n]); err != nil {
						return err
					}
					p = p[n:]
				}
				return nil
			},
			"readfrom":      func(w *encoder) error { _, err := w.ReadFrom(bytes.NewReader(data)); return err },
			"readfrom half": func(w *encoder) error { _, err := w.ReadFrom(iotest.HalfReader(bytes.NewReader(data))); return err },
			"io.Copy": func(w *encoder) error {
				_, err := io.Copy(w, io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data))))
				return err
			},
		}
		for way, write := range ways {
			var stored bytes.Buffer
			enc, err := (Codec{}).NewEncoder(&stored)
			if err != nil {
				t.Fatal(err)
			}
			if err := write(enc.(*encoder)); err != nil {
				t.Fatalf("%s, %s: %v", name, way, err)
			}
			if err := enc.Close(); err != nil {
				t.Fatalf("%s, %s: close: %v", name, way, err)
			}
			got, err := io.ReadAll(lz4.NewReader(bytes.NewReader(stored.Bytes())))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s, %s: decoded %d bytes of %d: %v", name, way, len(got), len(data), err)
			}
			checkLZ4Frame(t, name+", "+way, stored.Bytes(), data)
		}
	}
}

// checkLZ4Frame decodes a frame strictly: the header pierrec/lz4 writes
// for the same options, raw blocks only when compression did not help,
// and in each compressed block the end rules (rule 3 of codec_lz4.go).
func checkLZ4Frame(t *testing.T, name string, frame, data []byte) {
	t.Helper()
	var ref bytes.Buffer
	zw := lz4.NewWriter(&ref)
	if err := zw.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(true), lz4.ConcurrencyOption(1)); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	if !bytes.Equal(frame[:7], ref.Bytes()[:7]) {
		t.Fatalf("%s: frame header % x, pierrec/lz4 writes % x", name, frame[:7], ref.Bytes()[:7])
	}
	p, off := frame[7:], 0
	for {
		size := binary.LittleEndian.Uint32(p)
		p = p[4:]
		if size == 0 {
			break
		}
		n := int(size &^ (1 << 31))
		if n > lz4BlockMax {
			t.Fatalf("%s: block of %d bytes", name, n)
		}
		raw := min(lz4BlockMax, len(data)-off)
		if size&(1<<31) != 0 {
			if n != raw || !bytes.Equal(p[:n], data[off:off+n]) {
				t.Fatalf("%s: raw block at %d differs", name, off)
			}
		} else {
			if n >= raw {
				t.Fatalf("%s: compressed block at %d of %d bytes, not smaller than %d", name, off, n, raw)
			}
			checkLZ4Block(t, name, p[:n], data[off:off+raw])
		}
		p, off = p[n:], off+raw
	}
	if off != len(data) || binary.LittleEndian.Uint32(p) != xxh32Sum(data) || len(p) != 4 {
		t.Fatalf("%s: frame ends at raw offset %d of %d, %d bytes after the end mark", name, off, len(data), len(p))
	}
}

// checkLZ4Block decodes one block and checks that it is want, that its
// last 5 bytes are literals and that its last match starts at least 12
// bytes before its end.
func checkLZ4Block(t *testing.T, name string, b, want []byte) {
	t.Helper()
	var out []byte
	lastMatchStart := -1
	for i := 0; ; {
		tok := b[i]
		i++
		lit := int(tok >> 4)
		if lit == 15 {
			for {
				lit += int(b[i])
				i++
				if b[i-1] != 255 {
					break
				}
			}
		}
		out = append(out, b[i:i+lit]...)
		i += lit
		if i == len(b) {
			break
		}
		offset := int(binary.LittleEndian.Uint16(b[i:]))
		i += 2
		mlen := int(tok & 15)
		if mlen == 15 {
			for {
				mlen += int(b[i])
				i++
				if b[i-1] != 255 {
					break
				}
			}
		}
		mlen += lz4MinMatch
		if offset == 0 || offset > len(out) {
			t.Fatalf("%s: offset %d at output %d", name, offset, len(out))
		}
		lastMatchStart = len(out)
		for range mlen {
			out = append(out, out[len(out)-offset])
		}
		if len(out) > len(want)-lz4LastLiterals {
			t.Fatalf("%s: a match ends at %d, within the last 5 bytes of %d", name, len(out), len(want))
		}
	}
	if lastMatchStart > len(want)-lz4MatchFindLimit {
		t.Fatalf("%s: the last match starts at %d of %d", name, lastMatchStart, len(want))
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("%s: block decodes to %d bytes that differ from the %d written", name, len(out), len(want))
	}
}

// TestLZ4Writer_Ratio: compressible inputs shrink, random bytes are
// stored raw (a frame's overhead above their size and no more).
func TestLZ4Writer_Ratio(t *testing.T) {
	in := lz4TestInputs()
	for name, max := range map[string]float64{"text": 0.05, "zeros": 0.01, "wal repeated": 0.05, "wal rows": 0.95, "random": 1.001} {
		var stored bytes.Buffer
		if _, err := (Codec{}).Encode(&stored, bytes.NewReader(in[name])); err != nil {
			t.Fatal(err)
		}
		if r := float64(stored.Len()) / float64(len(in[name])); r > max {
			t.Errorf("%s: stored %.3f of its size, want at most %.3f", name, r, max)
		}
	}
}

func FuzzLZ4Writer(f *testing.F) {
	f.Add([]byte("abcabcabcabcabcabcabcabc"), uint16(3))
	f.Add(bytes.Repeat([]byte{0, 1, 2, 3, 4}, 30000), uint16(1000))
	f.Fuzz(func(t *testing.T, data []byte, piece uint16) {
		var stored bytes.Buffer
		enc, _ := (Codec{}).NewEncoder(&stored)
		for p := data; len(p) > 0; {
			n := min(len(p), 1+int(piece))
			enc.Write(p[:n])
			p = p[n:]
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(lz4.NewReader(&stored))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// BenchmarkLZ4Writer compares the frame writer with pierrec/lz4's on the
// same inputs (the stored fraction is reported as ratio).
func BenchmarkLZ4Writer(b *testing.B) {
	for name, wal := range benchWALs() {
		for _, impl := range []string{"ours", "pierrec"} {
			b.Run(name+"/"+impl, func(b *testing.B) {
				b.SetBytes(int64(len(wal)))
				var stored countWriter
				for b.Loop() {
					stored = 0
					if impl == "ours" {
						if _, err := (Codec{}).Encode(&stored, bytes.NewReader(wal)); err != nil {
							b.Fatal(err)
						}
						continue
					}
					zw := lz4.NewWriter(&stored)
					_ = zw.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(true), lz4.ConcurrencyOption(1))
					if _, err := io.Copy(zw, bytes.NewReader(wal)); err != nil {
						b.Fatal(err)
					}
					zw.Close()
				}
				b.ReportMetric(float64(stored)/float64(len(wal)), "ratio")
			})
		}
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

func BenchmarkXXH32(b *testing.B) {
	data := lz4TestInputs()["random"]
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		xxh32Sum(data)
	}
}

// TestLZ4Writer_Errors: a failing destination fails the encode with its
// error, a closed encoder refuses writes and closes again without
// effect, and the pooled writer it returned serves the next encode.
func TestLZ4Writer_Errors(t *testing.T) {
	data := lz4TestInputs()["random"]
	failing := failWriter{after: 100 << 10}
	if _, err := (Codec{}).Encode(&failing, bytes.NewReader(data)); !errors.Is(err, errFail) {
		t.Fatalf("encode into a failing writer: %v", err)
	}
	var stored bytes.Buffer
	enc, _ := (Codec{}).NewEncoder(&stored)
	enc.Write(data[:1000])
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := enc.Write(data); !errors.Is(err, errEncoderClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if got, err := io.ReadAll(lz4.NewReader(&stored)); err != nil || !bytes.Equal(got, data[:1000]) {
		t.Fatalf("frame written before close: %v", err)
	}
}

var errFail = errors.New("failing writer")

// failWriter accepts after bytes, then fails.
type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		return 0, errFail
	}
	w.after -= len(p)
	return len(p), nil
}
