package litestream

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
)

func TestCodec_RoundTrip(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("litestream "), 1<<20) // several LZ4 blocks
	for name, c := range map[string]Codec{
		"lz4": {},
		"age": mustKeys(t, []string{id.Recipient().String()}, []string{id.String()}),
	} {
		var stored bytes.Buffer
		if _, err := c.Encode(&stored, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		b := stored.Bytes()
		if name == "lz4" && !bytes.HasPrefix(b, []byte{0x04, 0x22, 0x4d, 0x18}) {
			t.Fatalf("not an LZ4 frame: % x", b[:4])
		}
		if name == "age" && !bytes.HasPrefix(b, []byte("age-encryption.org/v1")) {
			t.Fatalf("not an age file: %q", b[:20])
		}
		dec, err := c.NewDecoder(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(dec)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: round trip failed: %v", name, err)
		}
		// A flipped byte must be an error, never silently different data.
		b[len(b)/2] ^= 1
		if dec, err := c.NewDecoder(bytes.NewReader(b)); err == nil {
			if got, err := io.ReadAll(dec); err == nil && bytes.Equal(got, data) {
				t.Fatalf("%s: damage not detected", name)
			} else if err == nil {
				t.Fatalf("%s: damage returned different data without an error", name)
			}
		}
	}
}

func TestCodec_WrongIdentity(t *testing.T) {
	a, _ := age.GenerateX25519Identity()
	b, _ := age.GenerateX25519Identity()
	var stored bytes.Buffer
	mustKeys(t, []string{a.Recipient().String()}, nil).Encode(&stored, strings.NewReader("secret"))
	if _, err := mustKeys(t, nil, []string{b.String()}).NewDecoder(&stored); err == nil {
		t.Fatal("decrypted with the wrong identity")
	}
	if _, err := ParseAgeKeys([]string{"age1bogus"}, nil); err == nil {
		t.Fatal("bad recipient accepted")
	}
	if _, err := ParseAgeKeys(nil, []string{"AGE-SECRET-KEY-1BOGUS"}); err == nil || strings.Contains(err.Error(), "BOGUS") {
		t.Fatalf("bad identity: %v (the key must not be echoed)", err)
	}
}

func mustKeys(t *testing.T, recipients, identities []string) Codec {
	t.Helper()
	c, err := ParseAgeKeys(recipients, identities)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCodec_AgeKeysMismatch: age-encrypted bytes without an identity, with
// identities that all fail, and plain bytes with identities each give
// their own error, not the LZ4 decoder's "bad magic number", and no error
// shows a key.
func TestCodec_AgeKeysMismatch(t *testing.T) {
	a, _ := age.GenerateX25519Identity()
	b, _ := age.GenerateX25519Identity()
	c, _ := age.GenerateX25519Identity()
	var encrypted, plain bytes.Buffer
	if _, err := mustKeys(t, []string{a.Recipient().String()}, nil).Encode(&encrypted, strings.NewReader("secret")); err != nil {
		t.Fatal(err)
	}
	if _, err := (Codec{}).Encode(&plain, strings.NewReader("secret")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		codec  Codec
		stored []byte
		want   error
	}{
		{"no identity", Codec{}, encrypted.Bytes(), ErrAgeNoIdentity},
		{"recipients only", mustKeys(t, []string{a.Recipient().String()}, nil), encrypted.Bytes(), ErrAgeNoIdentity},
		{"no identity matches", mustKeys(t, nil, []string{b.String(), c.String()}), encrypted.Bytes(), ErrAgeNoMatch},
		{"not encrypted", mustKeys(t, nil, []string{a.String()}), plain.Bytes(), ErrNotAgeEncrypted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.codec.NewDecoder(bytes.NewReader(tc.stored))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, id := range []*age.X25519Identity{a, b, c} {
				if strings.Contains(err.Error(), id.String()) || strings.Contains(err.Error(), id.Recipient().String()) {
					t.Fatalf("error shows a key: %v", err)
				}
			}
		})
	}
	// A stream shorter than the age header is still read as LZ4 (and
	// fails as damaged there).
	dec, err := (Codec{}).NewDecoder(strings.NewReader("age"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(dec); err == nil {
		t.Fatal("3 bytes decoded without an error")
	}
}
