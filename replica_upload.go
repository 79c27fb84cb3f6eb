package litestream

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// uploadSegment encodes shadow bytes [pos.Offset, end) of pos.Index and
// stores them as one segment.
func (r *Replica) uploadSegment(ctx context.Context, pos Pos, end int64) error {
	f, err := os.Open(r.db.shadowPath(pos.Generation, pos.Index))
	if err != nil {
		return fmt.Errorf("open shadow WAL: %w", err)
	}
	defer f.Close()
	start := time.Now()
	rc := r.Codec.EncodeReader(io.NewSectionReader(f, pos.Offset, end-pos.Offset))
	defer rc.Close()
	info, err := r.Client.WriteSegment(ctx, pos, rc)
	if err != nil {
		return fmt.Errorf("write segment %s: %w", SegmentName(pos.Index, pos.Offset), err)
	}
	r.statusMu.Lock()
	r.status.WALBytes += end - pos.Offset
	r.statusMu.Unlock()
	r.logger().Debug("segment uploaded", "generation", pos.Generation, "segment", SegmentName(pos.Index, pos.Offset),
		"wal_bytes", end-pos.Offset, "stored_bytes", info.Size, "elapsed", time.Since(start).Round(time.Microsecond))
	return nil
}
