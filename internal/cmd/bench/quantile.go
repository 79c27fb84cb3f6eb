package main

import (
	"cmp"
	"slices"
)

// quantile returns the element of xs at fraction q of the way through its
// sorted copy (0.5: the median of an odd count; 0.99: p99).
func quantile[T cmp.Ordered](xs []T, q float64) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}
