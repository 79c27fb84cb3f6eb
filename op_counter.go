package litestream

import "sync"

// OpCounter counts replica storage requests by backend type and operation
// (GET, PUT, LIST, DELETE), for metrics and cost figures.
type OpCounter struct {
	mu     sync.Mutex
	counts map[OpKey]OpCount
}

// OpKey identifies a counter.
type OpKey struct{ ReplicaType, Op string }

// OpCount is a request count and the stored bytes they moved.
type OpCount struct{ N, Bytes int64 }

// Hook returns the function a client calls after each request (a
// backend's OnOp); it adds to the counters of replicaType and op, and is
// safe for concurrent use.
func (c *OpCounter) Hook(replicaType string) func(op string, bytes int64) {
	return func(op string, bytes int64) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.counts == nil {
			c.counts = map[OpKey]OpCount{}
		}
		k := OpKey{ReplicaType: replicaType, Op: op}
		v := c.counts[k]
		v.N++
		v.Bytes += bytes
		c.counts[k] = v
	}
}

// Counts returns a copy of the counters.
func (c *OpCounter) Counts() map[OpKey]OpCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[OpKey]OpCount, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}
