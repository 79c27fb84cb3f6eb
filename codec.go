package litestream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"github.com/pierrec/lz4/v4"
)

// Codec turns raw bytes (a database file, WAL bytes) into stored bytes and
// back: an LZ4 frame (independent 64 KiB blocks, content checksum),
// then age encryption when the replica has recipients. Both directions are
// streams; nothing is held whole in memory.
type Codec struct {
	Recipients []age.Recipient // encrypt when non-empty
	Identities []age.Identity  // decrypt when non-empty
}

// ParseAgeKeys parses age recipients ("age1...") and identities
// ("AGE-SECRET-KEY-1...") as written in the config file.
func ParseAgeKeys(recipients, identities []string) (Codec, error) {
	var c Codec
	if len(recipients) > 0 {
		rs, err := age.ParseRecipients(strings.NewReader(strings.Join(recipients, "\n")))
		if err != nil {
			return c, fmt.Errorf("age recipients: %w", err)
		}
		c.Recipients = rs
	}
	if len(identities) > 0 {
		ids, err := age.ParseIdentities(strings.NewReader(strings.Join(identities, "\n")))
		if err != nil {
			// The parser's message may quote the secret key: never show it.
			return c, errors.New("age identities: invalid identity (expected AGE-SECRET-KEY-1...; value not shown)")
		}
		c.Identities = ids
	}
	return c, nil
}

// Encrypted reports whether stored bytes are age-encrypted.
func (c Codec) Encrypted() bool { return len(c.Recipients) > 0 || len(c.Identities) > 0 }

// NewEncoder returns a writer that encodes raw bytes into w. Close flushes
// the LZ4 frame (and the age stream); it does not close w.
func (c Codec) NewEncoder(w io.Writer) (io.WriteCloser, error) {
	var ageW io.WriteCloser
	dst := w
	if len(c.Recipients) > 0 {
		aw, err := age.Encrypt(w, c.Recipients...)
		if err != nil {
			return nil, fmt.Errorf("age encrypt: %w", err)
		}
		ageW, dst = aw, aw
	} else if len(c.Identities) > 0 {
		return nil, errors.New("replica has age identities but no recipients: add recipients to write an encrypted replica")
	}
	// 64 KiB blocks, not v0.3's 4 MiB: LZ4 matches reach back 64 KiB, so
	// larger blocks compress no better (see docs/performance.md,
	// "codec.go"). Readers, v0.3's included, take any block size. The
	// frame writer is our own (codec_lz4.go), for its CPU.
	return &encoder{zw: newLZ4Writer(dst), ageW: ageW}, nil
}

// errEncoderClosed is the error of a write to a closed encoder.
var errEncoderClosed = errors.New("write to a closed encoder")

type encoder struct {
	zw   *lz4Writer // nil once closed: Close returns it to its pool
	ageW io.WriteCloser
}

func (e *encoder) Write(p []byte) (int, error) {
	if e.zw == nil {
		return 0, errEncoderClosed
	}
	return e.zw.Write(p)
}

// ReadFrom lets io.Copy hand the frame writer whole blocks to read into.
func (e *encoder) ReadFrom(r io.Reader) (int64, error) {
	if e.zw == nil {
		return 0, errEncoderClosed
	}
	return e.zw.ReadFrom(r)
}

func (e *encoder) Close() error {
	if e.zw == nil {
		return nil
	}
	zw := e.zw
	e.zw = nil
	if err := zw.Close(); err != nil {
		return fmt.Errorf("lz4 close: %w", err)
	}
	if e.ageW != nil {
		if err := e.ageW.Close(); err != nil {
			return fmt.Errorf("age close: %w", err)
		}
	}
	return nil
}

// ageHeader begins every age file (the version line of its header).
const ageHeader = "age-encryption.org/v1"

// ErrAgeNoIdentity is NewDecoder's error for age-encrypted stored bytes
// when the codec has no identity: it is returned before any byte reaches
// the LZ4 decoder, so the cause is named, not a bad magic number.
var ErrAgeNoIdentity = errors.New("encrypted with age, and no age identity is configured")

// ErrAgeNoMatch means none of the codec's identities decrypts the stored
// bytes: they were encrypted to other recipients.
var ErrAgeNoMatch = errors.New("encrypted with age to other recipients: no configured identity matches")

// ErrNotAgeEncrypted means the codec has identities but the stored bytes
// are not age-encrypted (written before encryption was configured).
var ErrNotAgeEncrypted = errors.New("not encrypted with age, yet age identities are configured")

// NewDecoder returns a reader of the raw bytes stored in r. A corrupt or
// truncated stream is an error on Read, never silently short data. It
// reads the first bytes of r to tell age from LZ4: a mismatch with the
// codec's keys is ErrAgeNoIdentity or ErrNotAgeEncrypted, and identities
// that all fail are ErrAgeNoMatch. No error holds a key.
func (c Codec) NewDecoder(r io.Reader) (io.Reader, error) {
	head := make([]byte, len(ageHeader))
	n, err := io.ReadFull(r, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("read: %w", err)
	}
	head = head[:n]
	encrypted := string(head) == ageHeader
	src := io.MultiReader(bytes.NewReader(head), r)
	switch {
	case len(c.Identities) == 0 && encrypted:
		return nil, ErrAgeNoIdentity
	case len(c.Identities) == 0:
		return &decoder{zr: lz4.NewReader(src)}, nil
	case !encrypted:
		return nil, ErrNotAgeEncrypted
	}
	ar, err := age.Decrypt(src, c.Identities...)
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return nil, fmt.Errorf("%w (%d tried; age: %v)", ErrAgeNoMatch, len(c.Identities), err)
	} else if err != nil {
		return nil, fmt.Errorf("age decrypt: %w", err)
	}
	return &decoder{zr: lz4.NewReader(ar)}, nil
}

type decoder struct{ zr *lz4.Reader }

func (d *decoder) Read(p []byte) (int, error) {
	n, err := d.zr.Read(p)
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("lz4: %w", err)
	}
	return n, err
}

// Encode writes the stored form of all of src (LZ4, then age when the
// codec has recipients) to dst and returns the raw bytes read; on success
// the LZ4 frame (and the age stream) is complete.
func (c Codec) Encode(dst io.Writer, src io.Reader) (int64, error) {
	enc, err := c.NewEncoder(dst)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(enc, src)
	if err != nil {
		return n, err
	}
	return n, enc.Close()
}

// EncodeReader returns a reader of the stored form of src, produced by a
// goroutine through a pipe; closing the result stops it.
func (c Codec) EncodeReader(src io.Reader) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		_, err := c.Encode(pw, src)
		pw.CloseWithError(err)
	}()
	return pr
}
