package main

import (
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	ratios := []float64{0.9, 0.7, 1.1, 0.8, 1.0}
	if got := quantile(ratios, 0.5); got != 0.9 {
		t.Errorf("median of %v = %v, want 0.9", ratios, got)
	}
	if ratios[0] != 0.9 || ratios[4] != 1.0 {
		t.Errorf("quantile reordered its input: %v", ratios)
	}
	lags := make([]time.Duration, 200)
	for i := range lags {
		lags[i] = time.Duration(200-i) * time.Millisecond
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 101 * time.Millisecond}, {0.99, 199 * time.Millisecond}, {1, 200 * time.Millisecond}, {0, time.Millisecond}} {
		if got := quantile(lags, c.q); got != c.want {
			t.Errorf("quantile(1..200 ms, %v) = %v, want %v", c.q, got, c.want)
		}
	}
}
