//go:build !linux

package litestream

import "os"

// startWriteback does nothing where the kernel has no sync_file_range.
func startWriteback(*os.File, int64, int64) {}
