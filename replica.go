package litestream

import (
	"log/slog"
	"sync"
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
	Retention              time.Duration // keep snapshots this long (default 24h; 0 keeps all)
	RetentionCheckInterval time.Duration // enforce retention this often (default 1h)
	SnapshotInterval       time.Duration // take a snapshot this often (0: off)
	ValidationInterval     time.Duration // validate the replica this often (0: off)

	db *DB // set by DB.AddReplica

	mu           sync.Mutex // serializes syncs, snapshots and retention of this replica
	pos          Pos        // end of what the replica holds; zero until known
	needSnapshot bool       // the replica has no snapshot in pos.Generation
	lastSnapshot time.Time
	lastRetain   time.Time
	lastValidate time.Time

	statusMu sync.Mutex
	status   ReplicaStatus
}

// ReplicaStatus is what the replica last achieved, for metrics and health.
type ReplicaStatus struct {
	Pos          Pos       // replicated position
	LastSync     time.Time // last sync attempt that succeeded
	LastSyncErr  error     // error of the last attempt, nil if it succeeded
	LastErrTime  time.Time
	SyncCount    int64
	SyncErrCount int64
	WALBytes     int64 // raw WAL bytes shipped

	ValidationsOK     int64
	ValidationsFailed int64
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

// DB returns the database the replica belongs to, nil for a replica used
// only to restore.
func (r *Replica) DB() *DB { return r.db }

// Status returns a copy of the replica's status.
func (r *Replica) Status() ReplicaStatus {
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	return r.status
}

func (r *Replica) logger() *slog.Logger {
	if r.db != nil && r.db.Logger != nil {
		return r.db.Logger.With("db", r.db.path, "replica", r.Name)
	}
	return slog.Default().With("replica", r.Name)
}
