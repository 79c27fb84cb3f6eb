package litestream

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// packageLayers is the layering of docs/architecture.md: a package may
// import only packages of a lower layer. testSupport packages (tests and
// tools) may import anything, and no layered package may import them
// outside its tests.
var packageLayers = map[string]int{
	"internal/walformat":   0,
	".":                    1,
	"internal/storeclient": 2,
	"file":                 3, "s3": 3, "gcs": 3, "abs": 3, "sftp": 3,
	"cmd/litestream": 4,
}

const testSupport = -1

// layerOf returns the layer of the package in dir (relative to the module
// root), testSupport for tests and tools, and false for a package that
// docs/architecture.md does not place.
func layerOf(dir string) (int, bool) {
	if l, ok := packageLayers[dir]; ok {
		return l, true
	}
	if dir == "internal/walformat/walformattest" || strings.HasPrefix(dir, "internal/") {
		return testSupport, true
	}
	return 0, false
}

// TestArchitecture_ImportsPointDown: no package imports a package above it
// or beside it in docs/architecture.md's picture, and no layered package
// imports a test-support package outside its tests.
func TestArchitecture_ImportsPointDown(t *testing.T) {
	const module = "github.com/litestream-go/litestream"
	imports := map[string]map[string]bool{} // package dir -> imported package dirs
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != "." && (strings.HasPrefix(n, ".") || n == "testdata" || n == "bin" || n == "etc") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if imports[dir] == nil {
			imports[dir] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == module {
				imports[dir]["."] = true
			} else if rest, ok := strings.CutPrefix(p, module+"/"); ok {
				imports[dir][rest] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("internal/walformat"); err != nil {
		t.Fatalf("run from the module root: %v", err)
	}
	for dir, deps := range imports {
		l, ok := layerOf(dir)
		if !ok {
			t.Errorf("package %s is not in docs/architecture.md's picture (add it there and to packageLayers)", dir)
			continue
		}
		if l == testSupport {
			continue
		}
		for dep := range deps {
			dl, ok := layerOf(dep)
			switch {
			case !ok:
				t.Errorf("%s imports %s, which docs/architecture.md does not place", dir, dep)
			case dl == testSupport:
				t.Errorf("%s imports the test-support package %s outside its tests", dir, dep)
			case dl >= l:
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must point down", dir, l, dep, dl)
			}
		}
	}
}
