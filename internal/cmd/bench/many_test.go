package main

import (
	"slices"
	"testing"
)

// TestNotReplicating: a database counts as replicating only with a shadow
// WAL and its replica at the shadow's index and offset.
func TestNotReplicating(t *testing.T) {
	body := `litestream_shadow_wal_index{db="/a.db"} 1
litestream_shadow_wal_size{db="/a.db"} 4152
litestream_replica_wal_index{db="/a.db",name="s3"} 1
litestream_replica_wal_offset{db="/a.db",name="s3"} 4152
litestream_shadow_wal_index{db="/b.db"} 2
litestream_shadow_wal_size{db="/b.db"} 4152
litestream_replica_wal_index{db="/b.db",name="s3"} 1
litestream_replica_wal_offset{db="/b.db",name="s3"} 4152
litestream_shadow_wal_index{db="/c.db"} 0
litestream_shadow_wal_size{db="/c.db"} 0
litestream_replica_wal_index{db="/c.db",name="s3"} 0
litestream_replica_wal_offset{db="/c.db",name="s3"} 0
litestream_shadow_wal_index{db="/d.db"} 0
litestream_shadow_wal_size{db="/d.db"} 8304
`
	got := notReplicating(body, []string{"/a.db", "/b.db", "/c.db", "/d.db", "/e.db"})
	if want := []string{"/b.db", "/c.db", "/d.db", "/e.db"}; !slices.Equal(got, want) {
		t.Errorf("notReplicating = %v, want %v", got, want)
	}
	if m := metricMax(body, "litestream_shadow_wal_size"); m != 8304 {
		t.Errorf("metricMax = %v, want 8304", m)
	}
}
