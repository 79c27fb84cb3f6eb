package litestream

import (
	"time"
)

// Replica is one destination of a database: a named ReplicaClient plus the
// codec of its stored bytes and its schedule. The engine keeps one position
// per replica; restore reads through the same Name, Client and Codec.
type Replica struct {
	Name   string        // unique per database; defaults to the client type
	Client ReplicaClient // where the bytes go
	Codec  Codec         // LZ4, and age when configured

	SyncInterval           time.Duration // ship the shadow WAL this often (default 1s)
	Retention              time.Duration // keep snapshots this long (default 24h)
	RetentionCheckInterval time.Duration // enforce retention this often (default 1h)
	SnapshotInterval       time.Duration // take a snapshot this often (0: off)
	ValidationInterval     time.Duration // validate the replica this often (0: off)
}

// NewReplica returns a replica with v0.3's default schedule.
func NewReplica(name string, client ReplicaClient) *Replica {
	if name == "" {
		name = client.Type()
	}
	return &Replica{
		Name:                   name,
		Client:                 client,
		SyncInterval:           DefaultSyncInterval,
		Retention:              DefaultRetention,
		RetentionCheckInterval: DefaultRetentionCheckInterval,
	}
}

// v0.3 defaults.
const (
	DefaultSyncInterval           = 1 * time.Second
	DefaultRetention              = 24 * time.Hour
	DefaultRetentionCheckInterval = 1 * time.Hour
)
