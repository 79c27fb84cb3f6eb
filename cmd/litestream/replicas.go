package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
	"github.com/litestream-go/litestream/s3"
)

// configFlags are the -config and -no-expand-env flags every command but
// version takes.
type configFlags struct {
	path     *string
	noExpand *bool
}

func registerConfigFlags(fs *commandFlags) configFlags {
	return configFlags{
		path:     fs.String("config", "", "config file (default $LITESTREAM_CONFIG, else /etc/litestream.yml)"),
		noExpand: fs.Bool("no-expand-env", false, "do not expand $VAR and ${VAR} in the config file"),
	}
}

// load reads the config file named by -config or the default path.
func (f configFlags) load() (*Config, error) {
	p := *f.path
	if p == "" {
		p = DefaultConfigPath()
	}
	return ReadConfigFile(p, !*f.noExpand)
}

// loadReplicateConfig builds the replicate command's config: from
// DB_PATH REPLICA_URL... arguments, or else from the config file.
func loadReplicateConfig(fs *commandFlags, cf configFlags) (*Config, error) {
	args := fs.Args()
	if len(args) == 0 {
		return cf.load()
	}
	if len(args) < 2 {
		return nil, errors.New("give a database path and at least one replica URL, or no arguments to use the config file")
	}
	if *cf.path != "" {
		return nil, errors.New("-config cannot be combined with DB_PATH REPLICA_URL arguments")
	}
	dbPath, err := expandPath(args[0])
	if err != nil {
		return nil, err
	}
	dbc := &DBConfig{Path: dbPath}
	for _, u := range args[1:] {
		rc, err := replicaConfigFromURL(u)
		if err != nil {
			return nil, err
		}
		dbc.Replicas = append(dbc.Replicas, rc)
	}
	cfg := &Config{DBs: []*DBConfig{dbc}}
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// replicaConfigFromURL turns a replica URL (or a plain directory path) into
// a replica config.
func replicaConfigFromURL(s string) (*ReplicaConfig, error) {
	if !strings.Contains(s, "://") {
		return &ReplicaConfig{Path: s}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("replica URL %q: %w", s, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("replica URL %q: a file URL has no host: use file:///absolute/path", s)
		}
		return &ReplicaConfig{Path: u.Path}, nil
	case "s3":
		return &ReplicaConfig{URL: s}, nil
	case "gcs", "abs", "sftp":
		return nil, fmt.Errorf("replica URL %q: %s replicas are not supported by this build yet (supported: file, s3)", s, u.Scheme)
	}
	return nil, fmt.Errorf("replica URL %q: unknown scheme %q (use a directory path, file:///path or s3://bucket/path)", s, u.Scheme)
}

// newDBFromConfig builds the engine's DB with its replicas.
// ops, if not nil, counts the replicas' storage requests.
func newDBFromConfig(dbc *DBConfig, logger *slog.Logger, ops *litestream.OpCounter) (*litestream.DB, error) {
	db := litestream.NewDB(dbc.Path)
	db.Logger = logger
	if dbc.MetaPath != "" {
		db.SetMetaPath(dbc.MetaPath)
	}
	db.MonitorInterval = dbc.MonitorInterval.D(db.MonitorInterval)
	db.CheckpointInterval = dbc.CheckpointInterval.D(db.CheckpointInterval)
	if dbc.MinCheckpointPageN != nil {
		// A value set by hand holds at every transaction size.
		db.MinCheckpointPageN, db.LargeTxCheckpointPageN = *dbc.MinCheckpointPageN, 0
	}
	if dbc.MaxCheckpointPageN != nil {
		db.MaxCheckpointPageN = *dbc.MaxCheckpointPageN
	}
	for _, rc := range dbc.Replicas {
		r, err := newReplicaFromConfig(rc, ops)
		if err != nil {
			return nil, fmt.Errorf("database %s: %w", dbc.Path, err)
		}
		db.AddReplica(r)
	}
	return db, nil
}

// newReplicaFromConfig builds a replica (client, codec, schedule).
func newReplicaFromConfig(rc *ReplicaConfig, ops *litestream.OpCounter) (*litestream.Replica, error) {
	var client litestream.ReplicaClient
	switch rc.Type {
	case "file":
		c := file.NewReplicaClient(rc.Path)
		if ops != nil {
			c.OnOp = ops.Hook("file")
		}
		client = c
	case "s3":
		c, err := newS3Client(rc)
		if err != nil {
			return nil, fmt.Errorf("replica %s: %w", rc.Name, err)
		}
		if ops != nil {
			c.OnOp = ops.Hook("s3")
		}
		client = c
	default:
		return nil, fmt.Errorf("replica %s: unsupported type %q", rc.Name, rc.Type)
	}
	r := litestream.NewReplica(rc.Name, client)
	r.SyncInterval = rc.SyncInterval.D(r.SyncInterval)
	r.Retention = rc.Retention.D(r.Retention)
	r.RetentionCheckInterval = rc.RetentionCheckInterval.D(r.RetentionCheckInterval)
	r.SnapshotInterval = rc.SnapshotInterval.D(0)
	r.ValidationInterval = rc.ValidationInterval.D(0)
	if rc.Age != nil {
		codec, err := litestream.ParseAgeKeys(rc.Age.Recipients, rc.Age.Identities)
		if err != nil {
			return nil, fmt.Errorf("replica %s: %w", rc.Name, err)
		}
		r.Codec = codec
	}
	return r, nil
}

// resolveReplicas turns a command's DB_PATH or REPLICA_URL argument into the
// replicas to read. A URL (or a directory holding generations/) is one
// replica; otherwise the argument is a database of the config file.
func resolveReplicas(cf configFlags, arg string) ([]*litestream.Replica, *DBConfig, error) {
	isURL := strings.Contains(arg, "://")
	if !isURL {
		if fi, err := os.Stat(filepath.Join(arg, "generations")); err == nil && fi.IsDir() {
			isURL = true
		}
	}
	if isURL {
		rc, err := replicaConfigFromURL(arg)
		if err != nil {
			return nil, nil, err
		}
		cfg := &Config{DBs: []*DBConfig{{Path: "/", Replicas: []*ReplicaConfig{rc}}}}
		if err := cfg.normalize(); err != nil {
			return nil, nil, err
		}
		r, err := newReplicaFromConfig(rc, nil)
		if err != nil {
			return nil, nil, err
		}
		return []*litestream.Replica{r}, nil, nil
	}
	cfg, err := cf.load()
	if err != nil {
		return nil, nil, fmt.Errorf("%s is not a replica URL or directory, so it must be a database of the config file: %w", arg, err)
	}
	dbc := cfg.DBConfig(arg)
	if dbc == nil {
		return nil, nil, fmt.Errorf("database %s is not in the config file, and is not a replica URL or directory", arg)
	}
	db, err := newDBFromConfig(dbc, slog.Default(), nil)
	if err != nil {
		return nil, nil, err
	}
	if len(db.Replicas) == 0 {
		return nil, nil, fmt.Errorf("database %s has no replicas in the config file", dbc.Path)
	}
	return db.Replicas, dbc, nil
}

// replicaLogAttrs says where a replica writes, for the startup log: its
// name and type, its directory or its bucket and key prefix (and endpoint
// host), and its sync interval. Credentials never appear in it.
func replicaLogAttrs(r *litestream.Replica) []any {
	attrs := []any{"replica", r.Name, "type", r.Client.Type()}
	switch c := r.Client.(type) {
	case *file.ReplicaClient:
		attrs = append(attrs, "path", c.Root())
	case *s3.ReplicaClient:
		attrs = append(attrs, "bucket", c.Bucket, "path", c.Path)
		if c.Endpoint != "" {
			attrs = append(attrs, "endpoint", endpointForLog(c.Endpoint))
		}
		if c.Region != "" {
			attrs = append(attrs, "region", c.Region)
		}
	}
	attrs = append(attrs, "sync_interval", r.SyncInterval.String())
	if r.Codec.Encrypted() {
		attrs = append(attrs, "encrypted", true)
	}
	return attrs
}

// endpointForLog returns an endpoint URL as scheme://host[/path], without
// any user:password@ or query it may carry.
func endpointForLog(s string) string {
	u, err := url.Parse(s)
	if err == nil && u.Host != "" {
		return u.Scheme + "://" + u.Host + u.Path
	}
	if strings.ContainsAny(s, "@?") {
		return "(not shown: not a URL with a host)"
	}
	return s
}
