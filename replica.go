package litestream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/litestream-go/litestream/internal/walformat"
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

	// outageWarnEvery replaces outageWarnInterval when positive (tests).
	outageWarnEvery time.Duration

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

// A replica's schedule when the config does not set it: Litestream v0.3's.
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

// StoreChecker is a ReplicaClient that can check its store with one cheap
// request, so that replicate refuses to start with a configuration that
// can never work (bad credentials, a missing bucket, a wrong endpoint)
// instead of logging failed syncs forever.
type StoreChecker interface {
	// CheckStore returns nil if the store accepts the client. An error
	// wrapping ErrStoreBusy means the store answered, but only with server
	// errors until ctx ended: it is there and may recover. Any other error
	// means the configuration or the network must change.
	CheckStore(ctx context.Context) error
}

// ErrStoreBusy marks a CheckStore error from a store that answered only
// with server errors (5xx, throttling).
var ErrStoreBusy = errors.New("the store answered only with server errors")

// ErrReplicaDamaged is wrapped by every error of a restore (and so of a
// validation) that found a stored object damaged: content that does not
// decode, a segment that decodes to more or fewer bytes than the next one's
// offset allows, an empty snapshot, a restored database that fails SQLite's
// check. Another replica may still hold the data; the same bytes fail again.
var ErrReplicaDamaged = errors.New("the replica is damaged")

// damaged returns err, with its message, also wrapping ErrReplicaDamaged.
func damaged(err error) error { return damagedError{err} }

type damagedError struct{ err error }

func (e damagedError) Error() string   { return e.err.Error() }
func (e damagedError) Unwrap() []error { return []error{e.err, ErrReplicaDamaged} }

// outageWarnInterval is how often a replica whose syncs keep failing says
// so again, with the backlog waiting for it.
const outageWarnInterval = time.Minute

// outage follows a run of failed syncs of one replica, so that the run
// loop logs one ERROR when it begins, a WARN with the backlog at the first
// failed sync after each outageWarnInterval while it lasts (a sync's
// request retries can delay it by their backoff, some seconds), and one
// INFO when a sync succeeds again. The zero value is no outage.
type outage struct {
	since    time.Time // first failed sync
	lastWarn time.Time
	shipped  int64 // status.WALBytes when it began
}

// failed records a failed sync.
func (o *outage) failed(r *Replica, err error, now time.Time) {
	if o.since.IsZero() {
		*o = outage{since: now, lastWarn: now, shipped: r.Status().WALBytes}
		r.logger().Error("replica sync failed; will retry, the shadow WAL keeps every commit until it succeeds", "error", err)
		return
	}
	every := outageWarnInterval
	if r.outageWarnEvery > 0 {
		every = r.outageWarnEvery
	}
	if now.Sub(o.lastWarn) < every {
		return
	}
	o.lastWarn = now
	bytes, frames := r.backlog()
	d := now.Sub(o.since)
	r.logger().Warn(fmt.Sprintf("replica %s still failing for %s: %v; %d frames (%s) waiting in the shadow WAL", r.Name, roundDuration(d), err, frames, formatBytes(bytes)),
		"failing_for", d.Round(time.Millisecond), "frames_waiting", frames, "bytes_waiting", bytes)
}

// succeeded records a successful sync, ending any outage.
func (o *outage) succeeded(r *Replica, now time.Time) {
	if o.since.IsZero() {
		return
	}
	d := now.Sub(o.since)
	bytes := r.Status().WALBytes - o.shipped
	frames := int64(0)
	if ps := r.frameSize(); ps > 0 {
		frames = bytes / ps
	}
	r.logger().Info(fmt.Sprintf("replica %s recovered after %s; shipped %d frames (%s) that waited in the shadow WAL", r.Name, roundDuration(d), frames, formatBytes(bytes)),
		"downtime", d.Round(time.Millisecond), "frames_shipped", frames, "bytes_shipped", bytes)
	*o = outage{}
}

// backlog returns the committed frames of the shadow WAL that the replica
// does not hold yet, and their bytes: from the replica's position to the
// shadow's end, or, before the replica found its place in the current
// generation, every shadow file the generation still has.
func (r *Replica) backlog() (bytes, frames int64) {
	end, _ := r.db.shadowPos()
	fs := r.frameSize()
	if end.IsZero() || fs == 0 {
		return 0, 0
	}
	pos := r.Pos()
	first := 0
	if pos.Generation == end.Generation {
		first = pos.Index
	}
	// Shadow files are removed oldest first, so those kept are contiguous
	// up to the current index.
	for i := end.Index; i >= first; i-- {
		size, err := r.db.shadowFileSize(i)
		if errors.Is(err, os.ErrNotExist) {
			break
		} else if err != nil {
			return bytes, frames
		}
		from := int64(walformat.HeaderSize)
		if pos.Generation == end.Generation && i == pos.Index {
			from = max(pos.Offset, from)
		}
		if size > from {
			n := (size - from) / fs
			frames += n
			bytes += n * fs
		}
	}
	return bytes, frames
}

// frameSize returns the size of a WAL frame of the database (page size
// plus the 24-byte frame header), 0 before the database is open.
func (r *Replica) frameSize() int64 {
	db := r.db
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.pageSize == 0 {
		return 0
	}
	return int64(db.pageSize) + walformat.FrameHeaderSize
}

// roundDuration formats d for a log line: to the second from a minute on
// ("5m", "1h2m3s"), to 100 ms below.
func roundDuration(d time.Duration) string {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	s := d.Round(time.Second).String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// formatBytes formats n in decimal units: "512 B", "1.5 kB", "12 MB".
func formatBytes(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	v, u := float64(n), 0
	for v >= 1000 && u < len(units)-1 {
		v /= 1000
		u++
	}
	prec := 0
	if u > 0 && v < 10 {
		prec = 1
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + " " + units[u]
}
