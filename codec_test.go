package litestream

import (
	"bytes"
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
