package litestream

import "testing"

// SetBeforeMoveIntoPlace makes f run in every restore just before it moves
// its finished file onto the output path, until the test ends. Tests that
// use it must not run in parallel with other restores.
func SetBeforeMoveIntoPlace(t testing.TB, f func(outputPath string)) {
	beforeMoveIntoPlace = f
	t.Cleanup(func() { beforeMoveIntoPlace = nil })
}

// CheckDecodeRatio is checkDecodeRatio, for tests.
func CheckDecodeRatio(decoded, stored int64) error { return checkDecodeRatio(decoded, stored) }
