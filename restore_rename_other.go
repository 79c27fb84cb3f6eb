//go:build !linux

package litestream

import "errors"

// renameNoReplace is the one-step rename that never replaces newpath; it
// is used on Linux only, elsewhere moveIntoPlace links then unlinks.
func renameNoReplace(oldpath, newpath string) error { return errors.ErrUnsupported }
