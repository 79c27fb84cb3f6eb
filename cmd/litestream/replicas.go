package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
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
		path:     fs.String("config", "", "config file (default $LITESTREAM_CONFIG, else "+defaultConfigPath+")"),
		noExpand: fs.Bool("no-expand-env", false, "do not expand $VAR and ${VAR} in the config file"),
	}
}

// file returns the config file's path: -config, else the default.
func (f configFlags) file() string {
	if *f.path != "" {
		return *f.path
	}
	return DefaultConfigPath()
}

// load reads the config file named by -config or the default path.
func (f configFlags) load() (*Config, error) {
	return ReadConfigFile(f.file(), !*f.noExpand)
}

// loadReplicateConfig builds the replicate command's config: from
// DB_PATH REPLICA_URL... arguments, or else from the config file. Either
// way every database's directory exists (see checkDBDirs).
func loadReplicateConfig(fs *commandFlags, cf configFlags) (*Config, error) {
	args := fs.Args()
	if len(args) == 0 {
		cfg, err := cf.load()
		if err != nil {
			return nil, err
		}
		if err := checkDBDirs(cfg); err != nil {
			return nil, fmt.Errorf("config file %s: %w", cf.file(), err)
		}
		return cfg, nil
	}
	if len(args) < 2 {
		return nil, errors.New("give a database path and at least one replica URL, or no arguments to use the config file")
	}
	if *cf.path != "" {
		return nil, errors.New("-config cannot be combined with DB_PATH REPLICA_URL arguments")
	}
	if args[0] == "" {
		return nil, errors.New("DB_PATH is empty: give the database file's path")
	}
	if !isPlainPath(args[0]) {
		return nil, fmt.Errorf("DB_PATH %q is not a file path: give the database first, then its replica URLs", redactURL(args[0]))
	}
	dbPath, err := expandPath(args[0])
	if err != nil {
		return nil, err
	}
	dbc := &DBConfig{Path: dbPath}
	perType := map[string]int{}
	for _, u := range args[1:] {
		rc, err := parseReplicaURL(u)
		if err != nil {
			return nil, err
		}
		// Names are unique per database: the second replica of a type
		// is named type2, and so on.
		perType[rc.Type]++
		if n := perType[rc.Type]; n > 1 {
			rc.Name = fmt.Sprintf("%s%d", rc.Type, n)
		}
		dbc.Replicas = append(dbc.Replicas, rc)
	}
	cfg := &Config{DBs: []*DBConfig{dbc}}
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	if err := checkDBDirs(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// checkDBDirs refuses a database whose directory is missing, or whose path
// is a directory. The engine waits for a missing database file, which the
// application may create at any time; a missing directory is a mistyped
// path far more often, and waiting on it would replicate nothing, quietly.
func checkDBDirs(cfg *Config) error {
	for _, db := range cfg.DBs {
		if fi, err := os.Stat(db.Path); err == nil && fi.IsDir() {
			return fmt.Errorf("%sdatabase %s is a directory: give the database file's path", atLine(db.Line), db.Path)
		}
		dir := filepath.Dir(db.Path)
		fi, err := os.Stat(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("%sdatabase %s: directory %s does not exist: create it or correct the path (litestream waits for a missing database file, not for its directory)", atLine(db.Line), db.Path, dir)
		case err != nil:
			return fmt.Errorf("%sdatabase %s: %w", atLine(db.Line), db.Path, err)
		case !fi.IsDir():
			return fmt.Errorf("%sdatabase %s: %s is not a directory", atLine(db.Line), db.Path, dir)
		}
	}
	return nil
}

// Replica URLs, from the command line (REPLICA_URL) and from the config
// file (url:), are read by parseReplicaURL alone, so that both accept the
// same strings and mean the same by them:
//   - A string with no colon before its first slash is a directory path,
//     and so is a Windows drive path (C:\x, C:/x).
//   - Anything else is a URL, and must be a valid one of a known scheme.
//
// A mistyped URL is thus an error that names the form expected, never a
// directory: "s3:/bucket/x" read as a path would put the backup in
// ./s3:/bucket/x, on the disk it is meant to protect. A relative directory
// whose first name has a colon is written ./name:x.
const replicaURLForms = "write a directory path, file:///ABSOLUTE/PATH, s3://BUCKET/PATH, gcs://BUCKET/PATH, abs://[ACCOUNT@]CONTAINER/PATH or sftp://USER[:PASSWORD]@HOST[:PORT]/PATH; start a relative path with ./ when its first name has a colon"

// s3URLQuery lists the query parameters of an s3:// URL; any other is a
// typo (an "endpont" ignored would send the backup to AWS).
var s3URLQuery = []string{"endpoint", "region", "forcePathStyle", "skipVerify"}

// parseReplicaURL turns a replica URL, or a directory path, into a replica
// config with its type set. Errors quote the URL without its password.
func parseReplicaURL(s string) (*ReplicaConfig, error) {
	if s == "" {
		return nil, errors.New("replica URL is empty: " + replicaURLForms)
	}
	if isPlainPath(s) {
		return &ReplicaConfig{Type: "file", Path: s}, nil
	}
	shown := redactURL(s)
	scheme := strings.ToLower(s[:strings.IndexByte(s, ':')])
	if !isScheme(scheme) {
		return nil, fmt.Errorf("replica URL %q: not a URL or a path (%s)", shown, replicaURLForms)
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("replica URL %q: %v", shown, err)
	}
	switch scheme {
	case "file":
		switch {
		case u.Opaque != "" || u.Path == "":
			return nil, fmt.Errorf("replica URL %q: write file:///ABSOLUTE/PATH, or a plain path for a relative directory", shown)
		case u.Host != "" && u.Host != "localhost":
			return nil, fmt.Errorf("replica URL %q: a file URL has no host: write file:///ABSOLUTE/PATH", shown)
		case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
			return nil, fmt.Errorf("replica URL %q: a file URL takes no ?query or #fragment: write file:///ABSOLUTE/PATH, or the plain path", shown)
		}
		return &ReplicaConfig{Type: "file", Path: u.Path}, nil
	case "s3":
		if u.Opaque != "" || u.Host == "" {
			return nil, fmt.Errorf("replica URL %q: write s3://BUCKET/PATH", shown)
		}
		if u.User != nil {
			return nil, fmt.Errorf("replica URL %q: an s3 URL carries no credentials: set access-key-id and secret-access-key in the config, or LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY", shown)
		}
		for k := range u.Query() {
			if !slices.Contains(s3URLQuery, k) {
				return nil, fmt.Errorf("replica URL %q: unknown parameter %q (known: %s)", shown, k, strings.Join(s3URLQuery, ", "))
			}
		}
		if _, err := s3.ParseURL(s); err != nil {
			return nil, err
		}
		return &ReplicaConfig{Type: "s3", URL: s}, nil
	case "gcs":
		return parseGCSURL(s, shown, u)
	case "abs":
		return parseABSURL(s, shown, u)
	case "sftp":
		return parseSFTPURL(s, shown, u)
	}
	return nil, fmt.Errorf("replica URL %q: unknown scheme %q (%s)", shown, scheme, replicaURLForms)
}

// isPlainPath reports whether s is a directory path rather than a URL: it
// has no colon before its first slash, or it starts with a drive letter.
func isPlainPath(s string) bool {
	if len(s) >= 3 && s[1] == ':' && (s[2] == '/' || s[2] == '\\') && ('a' <= s[0]|0x20 && s[0]|0x20 <= 'z') {
		return true
	}
	colon := strings.IndexByte(s, ':')
	if colon < 0 {
		return true
	}
	slash := strings.IndexAny(s, "/"+string(os.PathSeparator))
	return slash >= 0 && slash < colon
}

// isScheme reports whether s has the syntax of a URL scheme (RFC 3986:
// a letter, then letters, digits, +, - or .).
func isScheme(s string) bool {
	if s == "" || !('a' <= s[0] && s[0] <= 'z') {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// redactURL returns s with the password of a user:password@ part, if any,
// replaced by xxxxx, for error messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	authority, path, _ := strings.Cut(rest, "/")
	at := strings.LastIndexByte(authority, '@')
	user, _, hasPass := strings.Cut(authority[:max(at, 0)], ":")
	if at < 0 || !hasPass {
		return s
	}
	out := scheme + "://" + user + ":xxxxx" + authority[at:]
	if len(rest) > len(authority) {
		out += "/" + path
	}
	return out
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
	case "gcs", "abs", "sftp":
		var onOp func(string, int64)
		if ops != nil {
			onOp = ops.Hook(rc.Type)
		}
		var err error
		switch rc.Type {
		case "gcs":
			client, err = newGCSClient(rc, onOp)
		case "abs":
			client, err = newABSClient(rc, onOp)
		default:
			client, err = newSFTPClient(rc, onOp)
		}
		if err != nil {
			return nil, fmt.Errorf("replica %s: %w", rc.Name, err)
		}
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
	isURL := !isPlainPath(arg)
	if !isURL {
		if fi, err := os.Stat(filepath.Join(arg, "generations")); err == nil && fi.IsDir() {
			isURL = true
		}
	}
	if isURL {
		rc, err := parseReplicaURL(arg)
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
		return nil, nil, fmt.Errorf("database %s is not in the config file %s, and is not a replica URL or directory", arg, cf.file())
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
	default:
		switch c.Type() {
		case "gcs":
			attrs = append(attrs, gcsLogAttrs(c)...)
		case "abs":
			attrs = append(attrs, absLogAttrs(c)...)
		case "sftp":
			attrs = append(attrs, sftpLogAttrs(c)...)
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
