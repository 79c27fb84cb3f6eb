package litestream

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestMoveIntoPlace: every way moveIntoPlace moves the finished file
// leaves a file that is already at the output as it is.
func TestMoveIntoPlace(t *testing.T) {
	unsupported := func(string, string) error { return errors.ErrUnsupported }
	for name, rename := range map[string]func(string, string) error{
		"renameNoReplace": renameNoReplace,
		"link":            unsupported,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			tmp, out := filepath.Join(dir, "tmp"), filepath.Join(dir, "out.db")
			os.WriteFile(tmp, []byte("restored"), 0o644)
			os.WriteFile(out, []byte("precious"), 0o644)
			if err := moveIntoPlace(tmp, out, rename); !errors.Is(err, ErrOutputExists) {
				t.Fatalf("err = %v, want ErrOutputExists", err)
			}
			if b, _ := os.ReadFile(out); string(b) != "precious" {
				t.Fatal("existing output replaced")
			}
			os.Remove(out)
			if err := moveIntoPlace(tmp, out, rename); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(out); string(b) != "restored" {
				t.Fatalf("output holds %q", b)
			}
			if _, err := os.Lstat(tmp); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("temporary file still there (%v)", err)
			}
		})
	}
}
