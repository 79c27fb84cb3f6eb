package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// FuzzParseConfig: any text is either a config or one error line; nothing
// panics.
func FuzzParseConfig(f *testing.F) {
	if b, err := os.ReadFile("testdata/full.yml"); err == nil {
		f.Add(string(b))
	}
	f.Add("dbs:\n  - path: /a.db\n    replicas:\n      - url: s3://b/p\n")
	f.Add("dbs: [\n")
	f.Fuzz(func(t *testing.T, text string) {
		done := make(chan error, 1)
		go func() {
			_, err := ParseConfig([]byte(text), false)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("ParseConfig takes over 2 s on %q", text)
		}
	})
}
