package litestream

import (
	"context"
	"fmt"
	"time"
)

// GenerationInfo summarizes one generation of a replica.
type GenerationInfo struct {
	Replica    string
	Generation string
	Start, End time.Time // oldest and newest object times
	Snapshots  int
	Segments   int
	Size       int64 // stored bytes
}

// ListGenerations summarizes every generation of a replica.
func ListGenerations(ctx context.Context, r *Replica) ([]GenerationInfo, error) {
	gens, err := r.Client.Generations(ctx)
	if err != nil {
		return nil, fmt.Errorf("replica %s: %w", r.Name, err) // the client's error names the listing
	}
	var out []GenerationInfo
	for _, gen := range gens {
		c, err := loadCandidate(ctx, r, gen)
		if err != nil {
			return nil, err
		}
		g := GenerationInfo{Replica: r.Name, Generation: gen, Snapshots: len(c.snaps), Segments: len(c.segs), End: c.updatedAt}
		for _, s := range c.snaps {
			g.Size += s.Size
		}
		for _, s := range c.segs {
			g.Size += s.Size
			if g.Start.IsZero() || s.CreatedAt.Before(g.Start) {
				g.Start = s.CreatedAt
			}
		}
		if !c.start.IsZero() && (g.Start.IsZero() || c.start.Before(g.Start)) {
			g.Start = c.start
		}
		out = append(out, g)
	}
	return out, nil
}
