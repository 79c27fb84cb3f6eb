package main

import (
	"bufio"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/litestream-go/litestream"
)

// metricsCollector exports the engine's state in Litestream v0.3's metric
// names. It reads counters at scrape time, so the engine's hot paths carry
// no instrumentation.
type metricsCollector struct {
	dbs  *dbSet
	ops  *litestream.OpCounter
	meta map[*prometheus.Desc]descMeta // what writeText writes of each family

	dbSize, walSize, shadowIndex, shadowSize                  *prometheus.Desc
	totalWALBytes, syncCount, syncErrCount, syncSeconds       *prometheus.Desc
	ckptCount, ckptErrCount, ckptSeconds, ckptLockSeconds     *prometheus.Desc
	ckptPutOff, failedSyncs                                   *prometheus.Desc
	replicaIndex, replicaOffset, replicaWALBytes, replicaLag  *prometheus.Desc
	validations, opTotal, opBytes, replicaSyncs, replicaFails *prometheus.Desc
	databases, dbsFailing, dbsUnstarted, lagMax               *prometheus.Desc
}

func newMetricsCollector(dbs *dbSet, ops *litestream.OpCounter) *metricsCollector {
	db := []string{"db"}
	rep := []string{"db", "name"}
	meta := map[*prometheus.Desc]descMeta{}
	d := func(name, help string, labels []string) *prometheus.Desc {
		desc := prometheus.NewDesc(name, help, labels, nil)
		meta[desc] = descMeta{name: name, help: help, labels: labels}
		return desc
	}
	return &metricsCollector{
		dbs: dbs, ops: ops, meta: meta,
		dbSize:          d("litestream_db_size", "Size of the database file, in bytes.", db),
		walSize:         d("litestream_wal_size", "Size of the WAL file, in bytes.", db),
		shadowIndex:     d("litestream_shadow_wal_index", "Current shadow WAL index.", db),
		shadowSize:      d("litestream_shadow_wal_size", "Committed size of the current shadow WAL file, in bytes.", db),
		totalWALBytes:   d("litestream_total_wal_bytes", "WAL bytes copied into the shadow WAL.", db),
		syncCount:       d("litestream_sync_count", "WAL copies into the shadow WAL.", db),
		syncErrCount:    d("litestream_sync_error_count", "Failed WAL copies.", db),
		syncSeconds:     d("litestream_sync_seconds", "Time spent copying the WAL, in seconds.", db),
		failedSyncs:     d("litestream_sync_failing", "Syncs in a row that failed, up to now; 0 when the last one succeeded.", db),
		ckptCount:       d("litestream_checkpoint_count", "Checkpoints run.", []string{"db", "mode"}),
		ckptErrCount:    d("litestream_checkpoint_error_count", "Failed checkpoints.", []string{"db", "mode"}),
		ckptSeconds:     d("litestream_checkpoint_seconds", "Time spent checkpointing, in seconds.", []string{"db", "mode"}),
		ckptLockSeconds: d("litestream_checkpoint_lock_max_seconds", "Longest time a checkpoint held the database's write lock, in seconds.", db),
		ckptPutOff:      d("litestream_checkpoint_put_off_count", "Checkpoints put off because the application held the write lock past a short wait.", db),
		replicaIndex:    d("litestream_replica_wal_index", "Shadow WAL index the replica has reached.", rep),
		replicaOffset:   d("litestream_replica_wal_offset", "Offset in that index the replica has reached, in bytes.", rep),
		replicaWALBytes: d("litestream_replica_wal_bytes", "WAL bytes shipped to the replica.", rep),
		replicaLag:      d("litestream_replica_lag_seconds", "Age of the oldest committed transaction the replica does not have yet; 0 when caught up.", rep),
		replicaSyncs:    d("litestream_replica_sync_count", "Replica syncs that succeeded.", rep),
		replicaFails:    d("litestream_replica_sync_error_count", "Replica syncs that failed.", rep),
		validations:     d("litestream_replica_validation_total", "Replica validations by result.", []string{"db", "name", "status"}),
		opTotal:         d("litestream_replica_operation_total", "Replica storage requests.", []string{"replica_type", "operation"}),
		opBytes:         d("litestream_replica_operation_bytes", "Stored bytes moved by replica storage requests.", []string{"replica_type", "operation"}),
		databases:       d("litestream_databases", "Databases being replicated.", nil),
		dbsFailing:      d("litestream_databases_sync_failing", "Databases whose last WAL copy failed.", nil),
		dbsUnstarted:    d("litestream_databases_without_generation", "Databases with no generation yet: not replicating.", nil),
		lagMax:          d("litestream_replica_lag_max_seconds", "Largest litestream_replica_lag_seconds of every replica of every database.", nil),
	}
}

// Describe sends every descriptor.
func (c *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.dbSize, c.walSize, c.shadowIndex, c.shadowSize, c.totalWALBytes, c.syncCount, c.syncErrCount,
		c.syncSeconds, c.failedSyncs, c.ckptCount, c.ckptErrCount, c.ckptSeconds, c.ckptLockSeconds, c.ckptPutOff, c.replicaIndex, c.replicaOffset, c.replicaWALBytes,
		c.replicaLag, c.replicaSyncs, c.replicaFails, c.validations, c.opTotal, c.opBytes, c.databases, c.dbsFailing, c.dbsUnstarted, c.lagMax} {
		ch <- d
	}
}

// descMeta is a family's name, help and label names.
type descMeta struct {
	name, help string
	labels     []string
}

// sampleFunc receives one sample of the family d.
type sampleFunc func(d *prometheus.Desc, typ prometheus.ValueType, v float64, labels ...string)

// Collect reads the current values.
func (c *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	c.samples(func(d *prometheus.Desc, typ prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, typ, v, labels...)
	})
}

// writeText writes the current values in Prometheus's text format (0.0.4),
// each family's samples together under its HELP and TYPE lines, the same
// samples as Collect. It is what /metrics serves: with thousands of
// databases the registry's generic path (a message per sample, checked and
// sorted) costs several times the scrape budget.
func (c *metricsCollector) writeText(w io.Writer) error {
	type family struct {
		d   *prometheus.Desc
		typ prometheus.ValueType
		b   []byte
	}
	var order []*family
	byDesc := map[*prometheus.Desc]*family{}
	c.samples(func(d *prometheus.Desc, typ prometheus.ValueType, v float64, labels ...string) {
		f := byDesc[d]
		if f == nil {
			f = &family{d: d, typ: typ}
			byDesc[d] = f
			order = append(order, f)
		}
		m := c.meta[d]
		f.b = append(f.b, m.name...)
		if len(labels) > 0 {
			f.b = append(f.b, '{')
			for i, l := range labels {
				if i > 0 {
					f.b = append(f.b, ',')
				}
				f.b = append(f.b, m.labels[i]...)
				f.b = append(f.b, '=', '"')
				f.b = append(f.b, labelEscaper.Replace(l)...)
				f.b = append(f.b, '"')
			}
			f.b = append(f.b, '}')
		}
		f.b = append(f.b, ' ')
		f.b = appendSampleValue(f.b, v)
		f.b = append(f.b, '\n')
	})
	bw := bufio.NewWriterSize(w, 64<<10)
	for _, f := range order {
		m := c.meta[f.d]
		typ := "gauge"
		if f.typ == prometheus.CounterValue {
			typ = "counter"
		}
		bw.WriteString("# HELP " + m.name + " " + helpEscaper.Replace(m.help) + "\n# TYPE " + m.name + " " + typ + "\n")
		bw.Write(f.b)
	}
	return bw.Flush()
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

// appendSampleValue formats v as the text format does.
func appendSampleValue(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// samples reads the current values and hands each to emit.
func (c *metricsCollector) samples(emit sampleFunc) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		emit(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		emit(d, prometheus.CounterValue, v, labels...)
	}
	now := time.Now()
	dbs := c.dbs.list()
	var failing, unstarted int
	var lagMax time.Duration
	for _, db := range dbs {
		p := db.Path()
		gauge(c.dbSize, fileSize(p), p)
		gauge(c.walSize, fileSize(db.WALPath()), p)
		st := db.Stats()
		if st.FailedSyncs > 0 {
			failing++
		}
		if st.Generation == "" {
			unstarted++
		}
		gauge(c.shadowIndex, float64(st.ShadowIndex), p)
		gauge(c.shadowSize, float64(st.ShadowSize), p)
		counter(c.totalWALBytes, float64(st.WALBytes), p)
		counter(c.syncCount, float64(st.Syncs), p)
		counter(c.syncErrCount, float64(st.SyncErrs), p)
		counter(c.syncSeconds, st.SyncTime.Seconds(), p)
		gauge(c.failedSyncs, float64(st.FailedSyncs), p)
		counter(c.ckptCount, float64(st.Checkpoints), p, "PASSIVE")
		counter(c.ckptErrCount, float64(st.CheckpointErrs), p, "PASSIVE")
		counter(c.ckptSeconds, st.CheckpointTime.Seconds(), p, "PASSIVE")
		gauge(c.ckptLockSeconds, st.MaxLockHeld.Seconds(), p)
		counter(c.ckptPutOff, float64(st.CheckpointsPutOff), p)
		for _, r := range db.Replicas {
			rs := r.Status()
			gauge(c.replicaIndex, float64(rs.Pos.Index), p, r.Name)
			gauge(c.replicaOffset, float64(rs.Pos.Offset), p, r.Name)
			counter(c.replicaWALBytes, float64(rs.WALBytes), p, r.Name)
			lag := db.ReplicaLag(rs.Pos, now)
			lagMax = max(lagMax, lag)
			gauge(c.replicaLag, lag.Seconds(), p, r.Name)
			counter(c.replicaSyncs, float64(rs.SyncCount), p, r.Name)
			counter(c.replicaFails, float64(rs.SyncErrCount), p, r.Name)
			counter(c.validations, float64(rs.ValidationsOK), p, r.Name, "ok")
			counter(c.validations, float64(rs.ValidationsFailed), p, r.Name, "error")
		}
	}
	gauge(c.databases, float64(len(dbs)))
	gauge(c.dbsFailing, float64(failing))
	gauge(c.dbsUnstarted, float64(unstarted))
	gauge(c.lagMax, lagMax.Seconds())
	for k, v := range c.ops.Counts() {
		counter(c.opTotal, float64(v.N), k.ReplicaType, k.Op)
		counter(c.opBytes, float64(v.Bytes), k.ReplicaType, k.Op)
	}
}

func fileSize(p string) float64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return float64(fi.Size())
}
