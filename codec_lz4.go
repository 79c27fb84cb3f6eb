package litestream

import (
	"encoding/binary"
	"io"
	"math/bits"
	"sync"
)

// The LZ4 frame writer of Codec (LZ4 frame format 1.6.x, block format as
// in the LZ4 reference). What must hold for every frame it writes:
//  1. It is a plain LZ4 frame that any reader takes, v0.3.13's (pierrec/lz4
//     v4) included: independent blocks of at most 64 KiB, a content
//     checksum (xxHash32 of the raw bytes), no content size, no dictionary.
//  2. Each block is stored compressed only when that is smaller; otherwise
//     raw, with the block size's high bit set (legal in every reader).
//  3. A compressed block keeps the block format's end rules: its last 5
//     bytes are literals and its last match starts at least 12 bytes
//     before its end (lz4LastLiterals, lz4MatchFindLimit).
//
// It replaces pierrec/lz4's Writer for encoding only (decoding still uses
// pierrec/lz4). Its hash table keeps, beside each position, the 4 bytes
// found there, so that most candidates are ruled out without a load from
// the block; with the reference encoder's search step that grows after
// misses, that cuts the CPU of the bench's WAL pages by about two thirds
// at the same ratio (docs/performance.md, "CPU per GB, 2026-12-03").

const (
	lz4Magic          = 0x184D2204
	lz4BlockMax       = 64 << 10 // BD byte 0x40: blocks of at most 64 KiB
	lz4MinMatch       = 4
	lz4LastLiterals   = 5  // a block's last 5 bytes are literals
	lz4MatchFindLimit = 12 // a match starts at least 12 bytes before the end
	lz4HashLog        = 13 // 8192 entries of 8 bytes: 64 KiB
	// After 1<<lz4SkipTrigger positions without a match, the search steps
	// 2 bytes at a time, then 3, and so on, until the next match: the
	// reference encoder's rule, which keeps random bytes cheap.
	lz4SkipTrigger = 6
	// lz4ReadSize is how much ReadFrom reads at a time (whole blocks), and
	// lz4FlushSize the output it gathers before writing: fewer and larger
	// system calls on both sides of an upload.
	lz4ReadSize  = 2 * lz4BlockMax
	lz4FlushSize = 128 << 10
)

// lz4Bound is the most a compressed block of n bytes takes (n plus one
// byte per 255 of literals, plus a token).
func lz4Bound(n int) int { return n + n/255 + 16 }

// lz4Writer writes one LZ4 frame of the bytes written to it into w.
type lz4Writer struct {
	w       io.Writer
	started bool // the frame's header is in out
	err     error
	raw     []byte // bytes of the block being filled; cap lz4ReadSize
	out     []byte // encoded bytes not yet written to w
	sum     xxh32
	table   [1 << lz4HashLog]uint64 // a position (low 32 bits) and the 4 bytes there
}

var lz4WriterPool = sync.Pool{New: func() any {
	return &lz4Writer{raw: make([]byte, 0, lz4ReadSize), out: make([]byte, 0, lz4FlushSize+4+lz4Bound(lz4BlockMax))}
}}

// newLZ4Writer returns a writer of one frame into w, from a pool; Close
// puts it back.
func newLZ4Writer(w io.Writer) *lz4Writer {
	z := lz4WriterPool.Get().(*lz4Writer)
	z.w, z.started, z.err = w, false, nil
	z.raw, z.out = z.raw[:0], z.out[:0]
	z.sum.reset()
	return z
}

func (z *lz4Writer) header() {
	if z.started {
		return
	}
	z.started = true
	// FLG: version 01, independent blocks, content checksum. BD: 64 KiB.
	desc := [2]byte{0x64, 0x40}
	z.out = binary.LittleEndian.AppendUint32(z.out, lz4Magic)
	z.out = append(z.out, desc[0], desc[1], byte(xxh32Sum(desc[:])>>8))
}

// Write encodes p; whole blocks of p are compressed without a copy.
func (z *lz4Writer) Write(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	z.header()
	n := len(p)
	for len(p) > 0 {
		if len(z.raw) == 0 && len(p) >= lz4BlockMax {
			if err := z.block(p[:lz4BlockMax]); err != nil {
				return n - len(p), err
			}
			p = p[lz4BlockMax:]
			continue
		}
		m := copy(z.raw[len(z.raw):lz4BlockMax], p)
		z.raw, p = z.raw[:len(z.raw)+m], p[m:]
		if len(z.raw) == lz4BlockMax {
			if err := z.block(z.raw); err != nil {
				return n - len(p), err
			}
			z.raw = z.raw[:0]
		}
	}
	return n, nil
}

// ReadFrom encodes all of r, reading lz4ReadSize bytes at a time.
func (z *lz4Writer) ReadFrom(r io.Reader) (int64, error) {
	if z.err != nil {
		return 0, z.err
	}
	z.header()
	var total int64
	for {
		// Top up to whole blocks: a short read leaves a partial block in
		// raw, which the next read completes.
		m, err := r.Read(z.raw[len(z.raw):cap(z.raw)])
		z.raw = z.raw[:len(z.raw)+m]
		total += int64(m)
		full := len(z.raw) / lz4BlockMax * lz4BlockMax
		for off := 0; off < full; off += lz4BlockMax {
			if berr := z.block(z.raw[off : off+lz4BlockMax]); berr != nil {
				return total, berr
			}
		}
		z.raw = z.raw[:copy(z.raw, z.raw[full:])]
		if err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, err
		}
	}
}

// Close ends the frame (the last block, the end mark, the content
// checksum) and writes it out; it does not close w. The writer goes back
// to the pool and must not be used again.
func (z *lz4Writer) Close() error {
	err := z.err
	if err == nil {
		z.header()
		if len(z.raw) > 0 {
			err = z.block(z.raw)
			z.raw = z.raw[:0]
		}
	}
	if err == nil {
		z.out = binary.LittleEndian.AppendUint32(z.out, 0) // end mark
		z.out = binary.LittleEndian.AppendUint32(z.out, z.sum.sum())
		err = z.flush(0)
	}
	z.w = nil
	z.err = errWriterClosed
	lz4WriterPool.Put(z)
	return err
}

var errWriterClosed = io.ErrClosedPipe

// flush writes out when it holds at least min bytes.
func (z *lz4Writer) flush(min int) error {
	if len(z.out) == 0 || len(z.out) < min {
		return nil
	}
	_, err := z.w.Write(z.out)
	z.out = z.out[:0]
	if err != nil {
		z.err = err
	}
	return err
}

// block appends the block of src (at most lz4BlockMax bytes) to out,
// compressed when that is smaller (rule 2), after writing out what out
// holds once it reaches lz4FlushSize.
func (z *lz4Writer) block(src []byte) error {
	if err := z.flush(lz4FlushSize); err != nil {
		return err
	}
	z.sum.write(src)
	at := len(z.out)
	z.out = z.out[:at+4+lz4Bound(len(src))] // within cap after the flush
	n := z.compress(src, z.out[at+4:])
	if n == 0 || n >= len(src) {
		binary.LittleEndian.PutUint32(z.out[at:], uint32(len(src))|1<<31)
		z.out = append(z.out[:at+4], src...)
		return nil
	}
	binary.LittleEndian.PutUint32(z.out[at:], uint32(n))
	z.out = z.out[:at+4+n]
	return nil
}

func lz4Hash(u uint32) uint32 { return (u * 2654435761) >> (32 - lz4HashLog) }

// compress writes the LZ4 block of src into dst (of lz4Bound(len(src))
// bytes) and returns its size, or 0 when the block is not worth
// compressing: shorter than a match needs, or growing past len(src).
//
// The hash table holds positions in the current block only by value:
// entries left by earlier blocks are not cleared, since every candidate
// is checked against the bytes at it (and must be before the search
// position), so a stale one costs a failed comparison and no more.
func (z *lz4Writer) compress(src, dst []byte) int {
	n := len(src)
	if n < lz4MatchFindLimit+1 || n > lz4BlockMax {
		return 0
	}
	table := &z.table
	limit := n - lz4MatchFindLimit  // matches start before limit (rule 3)
	matchEnd := n - lz4LastLiterals // and end at or before matchEnd
	anchor, si, di := 0, 1, 0
	seq0 := binary.LittleEndian.Uint32(src)
	table[lz4Hash(seq0)] = uint64(seq0) << 32
	for {
		// Find a match at si or after: a candidate from the table whose
		// first 4 bytes are the same.
		var ref int
		for attempts := 1 << lz4SkipTrigger; ; attempts++ {
			if si >= limit {
				return z.lastLiterals(src, dst, anchor, di)
			}
			seq := binary.LittleEndian.Uint32(src[si:])
			h := lz4Hash(seq)
			e := table[h]
			table[h] = uint64(seq)<<32 | uint64(si)
			// The bytes kept in the entry rule out most candidates without
			// a load from src; an entry from an earlier block is checked
			// against src all the same.
			if ref = int(uint32(e)); uint32(e>>32) == seq && ref < si && binary.LittleEndian.Uint32(src[ref:]) == seq {
				break
			}
			si += attempts >> lz4SkipTrigger
		}
		// Extend backwards over the literals, then forwards.
		for si > anchor && ref > 0 && src[si-1] == src[ref-1] {
			si, ref = si-1, ref-1
		}
		end := si + lz4MinMatch + lz4Extend(src, si+lz4MinMatch, ref+lz4MinMatch, matchEnd)
		// A sequence: token, literal length, literals, offset, match length.
		lit, mlen := si-anchor, end-si-lz4MinMatch
		if di+lit+lit/255+8+mlen/255 > n {
			return 0 // no smaller than the raw block: stop here
		}
		tok := &dst[di]
		di++
		if lit >= 15 {
			*tok = 15 << 4
			di = lz4PutLength(dst, di, lit-15)
		} else {
			*tok = byte(lit << 4)
		}
		di += copy(dst[di:], src[anchor:si])
		binary.LittleEndian.PutUint16(dst[di:], uint16(si-ref))
		di += 2
		if mlen >= 15 {
			*tok |= 15
			di = lz4PutLength(dst, di, mlen-15)
		} else {
			*tok |= byte(mlen)
		}
		si, anchor = end, end
		if si >= limit {
			return z.lastLiterals(src, dst, anchor, di)
		}
		// The position just before the match's end often starts the next
		// one (a row's header after a row of the same length).
		seq := binary.LittleEndian.Uint32(src[si-2:])
		table[lz4Hash(seq)] = uint64(seq)<<32 | uint64(si-2)
	}
}

// lz4Extend returns how many bytes from i equal those from r (r < i), up
// to limit: 8 bytes at a time, then byte by byte.
func lz4Extend(src []byte, i, r, limit int) int {
	a := src[i:limit]
	b := src[r:][:len(a)] // as long as a, so one check covers both
	n := 0
	for ; len(a)-n >= 16; n += 16 {
		x := binary.LittleEndian.Uint64(a[n:]) ^ binary.LittleEndian.Uint64(b[n:])
		if x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		x = binary.LittleEndian.Uint64(a[n+8:]) ^ binary.LittleEndian.Uint64(b[n+8:])
		if x != 0 {
			return n + 8 + bits.TrailingZeros64(x)>>3
		}
	}
	for ; n < len(a) && a[n] == b[n]; n++ {
	}
	return n
}

// lastLiterals ends a block with src[anchor:] as literals and returns the
// block's size, or 0 when it is not smaller than src.
func (z *lz4Writer) lastLiterals(src, dst []byte, anchor, di int) int {
	lit := len(src) - anchor
	if di+1+lit+lit/255+1 >= len(src) {
		return 0
	}
	if lit >= 15 {
		dst[di] = 15 << 4
		di = lz4PutLength(dst, di+1, lit-15)
	} else {
		dst[di] = byte(lit << 4)
		di++
	}
	di += copy(dst[di:], src[anchor:])
	return di
}

// lz4PutLength writes the rest of a length past the token's 15: bytes of
// 255, then the remainder.
func lz4PutLength(dst []byte, di, l int) int {
	for ; l >= 255; l -= 255 {
		dst[di] = 255
		di++
	}
	dst[di] = byte(l)
	return di + 1
}

// xxh32 is xxHash32 with seed 0, the LZ4 frame's checksum, as its
// specification defines it.
type xxh32 struct {
	v      [4]uint32
	total  uint64
	buf    [16]byte
	buffed int
}

const (
	xxhPrime1 uint32 = 2654435761
	xxhPrime2 uint32 = 2246822519
	xxhPrime3 uint32 = 3266489917
	xxhPrime4 uint32 = 668265263
	xxhPrime5 uint32 = 374761393
)

func (x *xxh32) reset() {
	p1 := xxhPrime1
	*x = xxh32{v: [4]uint32{p1 + xxhPrime2, xxhPrime2, 0, -p1}}
}

func xxhRound(acc, in uint32) uint32 {
	return bits.RotateLeft32(acc+in*xxhPrime2, 13) * xxhPrime1
}

func (x *xxh32) write(p []byte) {
	x.total += uint64(len(p))
	if x.buffed > 0 {
		m := copy(x.buf[x.buffed:], p)
		x.buffed, p = x.buffed+m, p[m:]
		if x.buffed < 16 {
			return
		}
		x.stripes(x.buf[:])
		x.buffed = 0
	}
	full := len(p) &^ 15
	x.stripes(p[:full])
	x.buffed = copy(x.buf[:], p[full:])
}

// stripes consumes p, a multiple of 16 bytes.
func (x *xxh32) stripes(p []byte) {
	v1, v2, v3, v4 := x.v[0], x.v[1], x.v[2], x.v[3]
	for ; len(p) >= 16; p = p[16:] {
		q := p[:16:16] // one bounds check for the four loads
		v1 = xxhRound(v1, binary.LittleEndian.Uint32(q[0:4]))
		v2 = xxhRound(v2, binary.LittleEndian.Uint32(q[4:8]))
		v3 = xxhRound(v3, binary.LittleEndian.Uint32(q[8:12]))
		v4 = xxhRound(v4, binary.LittleEndian.Uint32(q[12:16]))
	}
	x.v = [4]uint32{v1, v2, v3, v4}
}

func (x *xxh32) sum() uint32 {
	var h uint32
	if x.total >= 16 {
		h = bits.RotateLeft32(x.v[0], 1) + bits.RotateLeft32(x.v[1], 7) + bits.RotateLeft32(x.v[2], 12) + bits.RotateLeft32(x.v[3], 18)
	} else {
		h = xxhPrime5 // seed 0
	}
	h += uint32(x.total)
	p := x.buf[:x.buffed]
	for ; len(p) >= 4; p = p[4:] {
		h = bits.RotateLeft32(h+binary.LittleEndian.Uint32(p)*xxhPrime3, 17) * xxhPrime4
	}
	for _, b := range p {
		h = bits.RotateLeft32(h+uint32(b)*xxhPrime5, 11) * xxhPrime1
	}
	h ^= h >> 15
	h *= xxhPrime2
	h ^= h >> 13
	h *= xxhPrime3
	h ^= h >> 16
	return h
}

// xxh32Sum returns the xxHash32 of p.
func xxh32Sum(p []byte) uint32 {
	var x xxh32
	x.reset()
	x.write(p)
	return x.sum()
}
