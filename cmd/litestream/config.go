package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the YAML configuration file (SPEC section 6).
type Config struct {
	DBs             []*DBConfig   `yaml:"dbs"`
	Addr            string        `yaml:"addr"` // Prometheus /metrics bind address; off when empty
	AccessKeyID     string        `yaml:"access-key-id"`
	SecretAccessKey string        `yaml:"secret-access-key"`
	Exec            string        `yaml:"exec"`
	Logging         LoggingConfig `yaml:"logging"`
	HealthWindow    *Duration     `yaml:"health-window"` // /healthz: longest time since a replica's last good sync
	Pprof           bool          `yaml:"pprof"`         // serve /debug/pprof on addr (off by default)
	// HeartbeatURL receives a GET every HeartbeatInterval while every
	// database and replica syncs (see heartbeat.go); off when empty.
	HeartbeatURL      string    `yaml:"heartbeat-url"`
	HeartbeatInterval *Duration `yaml:"heartbeat-interval"`

	// Dirs are the directory entries of dbs (dir: instead of path:),
	// moved out of DBs by normalize: DBs holds path entries only.
	Dirs []*DBConfig `yaml:"-"`

	// EmptyVars names each $VAR or ${VAR} that expanded to nothing, with
	// its line: a secret or a bucket name left unset is a config that
	// looks right and is not.
	EmptyVars []string `yaml:"-"`
	// Notes says what loading decided that the file does not spell out
	// (a name given to an unnamed replica), for the startup log.
	Notes []string `yaml:"-"`
	// Warnings names keys that load but mean nothing where they are (an
	// S3 key on an SFTP replica): v0.3 ignores them, so a v0.3 config
	// still loads, and the startup log says which.
	Warnings []string `yaml:"-"`
}

// LoggingConfig selects the log level, format and stream.
type LoggingConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Type   string `yaml:"type"`   // text or json
	Stderr bool   `yaml:"stderr"` // log to stderr instead of stdout
}

// DBConfig is one database to replicate. Pointer fields are unset when nil.
type DBConfig struct {
	Path               string           `yaml:"path"`
	MetaPath           string           `yaml:"meta-path"`
	MonitorInterval    *Duration        `yaml:"monitor-interval"`
	CheckpointInterval *Duration        `yaml:"checkpoint-interval"`
	MinCheckpointPageN *int             `yaml:"min-checkpoint-page-count"`
	MaxCheckpointPageN *int             `yaml:"max-checkpoint-page-count"`
	Replicas           []*ReplicaConfig `yaml:"replicas"`
	// RestoreIfDBNotExists restores a missing database from its replicas
	// before replicating it (see restoreMissing).
	RestoreIfDBNotExists bool `yaml:"restore-if-db-not-exists"`

	// A directory entry (dir: instead of path:) replicates every database
	// in Dir whose base name matches Pattern, each under its path relative
	// to Dir on every replica (see dir_config.go).
	Dir       string `yaml:"dir"`
	Pattern   string `yaml:"pattern"`
	Recursive bool   `yaml:"recursive"` // also the databases of Dir's subdirectories
	Watch     bool   `yaml:"watch"`     // pick up databases created, and stop those removed, while running

	Line int `yaml:"-"` // line of the entry in the file
}

// ReplicaConfig is one replica of a database.
type ReplicaConfig struct {
	Type                   string     `yaml:"type"`
	Name                   string     `yaml:"name"`
	Path                   string     `yaml:"path"`
	URL                    string     `yaml:"url"`
	Retention              *Duration  `yaml:"retention"`
	RetentionCheckInterval *Duration  `yaml:"retention-check-interval"`
	SnapshotInterval       *Duration  `yaml:"snapshot-interval"`
	SyncInterval           *Duration  `yaml:"sync-interval"`
	ValidationInterval     *Duration  `yaml:"validation-interval"`
	Age                    *AgeConfig `yaml:"age"`

	// S3 only.
	Bucket          string `yaml:"bucket"`
	Region          string `yaml:"region"`
	Endpoint        string `yaml:"endpoint"`
	ForcePathStyle  *bool  `yaml:"force-path-style"`
	SkipVerify      bool   `yaml:"skip-verify"`
	AccessKeyID     string `yaml:"access-key-id"`
	SecretAccessKey string `yaml:"secret-access-key"`

	// Azure Blob Storage only (bucket is the container, endpoint the
	// service URL).
	AccountName string `yaml:"account-name"`
	AccountKey  string `yaml:"account-key"`

	// SFTP only.
	Host           string `yaml:"host"` // HOST[:PORT]
	User           string `yaml:"user"`
	Password       string `yaml:"password"`
	KeyPath        string `yaml:"key-path"`
	HostKey        string `yaml:"host-key"`         // the server's public key, as in known_hosts or authorized_keys
	KnownHostsPath string `yaml:"known-hosts-path"` // a known_hosts file holding the server's key

	Line int `yaml:"-"`
}

// AgeConfig holds age keys: recipients encrypt, identities decrypt.
type AgeConfig struct {
	Identities []string `yaml:"identities"`
	Recipients []string `yaml:"recipients"`
}

// Duration is a time.Duration written in Go syntax ("10s", "1h").
type Duration time.Duration

// UnmarshalYAML parses a Go duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q (use Go syntax such as 10s, 1m, 1h)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// D returns the duration, or def when unset.
func (d *Duration) D(def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return time.Duration(*d)
}

// DefaultConfigPath returns $LITESTREAM_CONFIG, else the platform's
// default: /etc/litestream.yml, or C:\Litestream\litestream.yml on
// Windows, as in v0.3.
func DefaultConfigPath() string {
	if p := os.Getenv("LITESTREAM_CONFIG"); p != "" {
		return p
	}
	return defaultConfigPath
}

// ReadConfigFile reads and validates a config file.
func ReadConfigFile(path string, expandEnv bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("config file %s not found: pass -config PATH or set LITESTREAM_CONFIG, or give DB_PATH and REPLICA_URL arguments", path)
	} else if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	cfg, err := ParseConfig(data, expandEnv)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return cfg, nil
}

var unknownFieldRE = regexp.MustCompile(`line (\d+): field (\S+) not found in type main\.(\w+)`)

// ParseConfig parses YAML config text: environment expansion (unless
// expandEnv is false), strict keys, defaults that derive from other keys,
// and validation. Every error names the key and its line.
func ParseConfig(data []byte, expandEnv bool) (*Config, error) {
	var empty []string
	if expandEnv {
		data, empty = expandEnvVars(data)
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, describeYAMLError(err, data)
	}
	// A second pass over the node tree records each entry's line.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, describeYAMLError(err, data)
	}
	recordLines(&root, &cfg)
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	cfg.EmptyVars = empty
	return &cfg, nil
}

// expandEnvVars expands $VAR and ${VAR} line by line, as os.ExpandEnv
// does, and returns "line N: NAME" for each variable that was unset or
// empty outside a comment line.
func expandEnvVars(data []byte) ([]byte, []string) {
	var empty []string
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		comment := strings.HasPrefix(strings.TrimSpace(line), "#")
		lines[i] = os.Expand(line, func(name string) string {
			v := os.Getenv(name)
			if v == "" && !comment {
				empty = append(empty, fmt.Sprintf("line %d: %s", i+1, name))
			}
			return v
		})
	}
	return []byte(strings.Join(lines, "\n")), empty
}

// describeYAMLError rewrites the YAML library's messages into ours: the
// line that breaks the syntax, and type mismatches in YAML's words.
func describeYAMLError(err error, data []byte) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "yaml: "); ok && !strings.HasPrefix(rest, "unmarshal errors:") {
		_, problem := cutLinePrefix(rest)
		return fmt.Errorf("line %d: %s", syntaxErrorLine(data, problem), problem)
	}
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	msg = strings.TrimPrefix(msg, "yaml: ")
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if m := unknownFieldRE.FindStringSubmatch(l); m != nil {
			l = fmt.Sprintf("line %s: unknown key %q in %s%s", m[1], m[2], sectionName(m[3]), suggestKey(m[2], m[3]))
		} else if m := typeMismatchRE.FindStringSubmatch(l); m != nil {
			l = fmt.Sprintf("line %s: %s; found %s", m[1], expectedShape(m[4]), foundShape(m[2], m[3], m[4]))
		}
		if l != "" {
			lines = append(lines, l)
		}
	}
	return errors.New(strings.Join(lines, "; "))
}

var lineRE = regexp.MustCompile(`^line (\d+): `)

// cutLinePrefix splits "line N: problem" into N (0 when absent) and problem.
func cutLinePrefix(s string) (int, string) {
	m := lineRE.FindStringSubmatch(s)
	if m == nil {
		return 0, s
	}
	n, _ := strconv.Atoi(m[1])
	return n, s[len(m[0]):]
}

// syntaxErrorLine returns the line that breaks the YAML syntax. The YAML
// library reports the line where the enclosing block began (a tab on line
// 5 of a list that began on line 4 is "line 4"; a bad key under dbs: is
// "line 1"), and no line at all for the first. The first line whose prefix
// of the document fails with the same problem is the line that causes it:
// parsing stops at the first problem, so every longer prefix fails alike.
func syntaxErrorLine(data []byte, problem string) int {
	lines := strings.SplitAfter(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	fails := func(n int) bool {
		var root yaml.Node
		err := yaml.Unmarshal([]byte(strings.Join(lines[:n], "")), &root)
		if err == nil {
			return false
		}
		_, p := cutLinePrefix(strings.TrimPrefix(err.Error(), "yaml: "))
		return p == problem
	}
	n := sort.Search(len(lines), func(i int) bool { return fails(i + 1) }) + 1
	return min(n, max(len(lines), 1))
}

// typeMismatchRE matches the YAML library's "cannot unmarshal" message:
// the YAML tag found, its value for a scalar, and the Go type expected.
var typeMismatchRE = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+)(?: `([^`]*)`)? into (.+)$")

// expectedShape says, in YAML terms, what a Go type expects.
func expectedShape(goType string) string {
	switch goType {
	case "[]*main.DBConfig":
		return `dbs must be a list of databases, each entry starting with "- path:"`
	case "[]*main.ReplicaConfig":
		return `replicas must be a list, each entry starting with "- " ("- path: DIR" or "- url: s3://BUCKET/PATH")`
	case "main.DBConfig":
		return "a database entry must be keys and values (path: FILE, replicas: ...)"
	case "main.ReplicaConfig":
		return "a replica entry must be keys and values (path: DIR, or url: s3://BUCKET/PATH)"
	case "main.LoggingConfig":
		return "logging must be keys and values (level:, type:, stderr:)"
	case "main.AgeConfig":
		return "age must be keys and values (recipients:, identities:)"
	case "main.Config":
		return "the file must be keys and values (dbs:, addr:, ...)"
	case "[]string":
		return "expected a list (one \"- item\" a line, or [a, b])"
	case "string":
		return "expected a string"
	case "int":
		return "expected a whole number"
	case "bool":
		return "expected true or false"
	}
	return "expected a " + goType
}

// foundShape says, in YAML terms, what was found. A scalar's value is shown
// only where a number or a boolean was expected: elsewhere it could be a
// secret written at the wrong place.
func foundShape(tag, value, goType string) string {
	var shape string
	switch tag {
	case "map":
		return "keys and values (a map)"
	case "seq":
		return "a list"
	case "null":
		return "nothing"
	case "str":
		shape = "a string"
	case "int", "float":
		shape = "a number"
	case "bool":
		shape = "a boolean"
	default:
		shape = "a " + tag
	}
	if value != "" && (goType == "int" || goType == "bool") {
		shape += fmt.Sprintf(" (%s)", value)
	}
	return shape
}

func sectionName(typ string) string {
	switch typ {
	case "DBConfig":
		return "a database entry"
	case "ReplicaConfig":
		return "a replica entry"
	case "LoggingConfig":
		return "logging"
	case "AgeConfig":
		return "age"
	}
	return "the top level"
}

// suggestKey proposes the closest known key of the same section.
func suggestKey(key, typ string) string {
	known := map[string][]string{
		"Config":        {"dbs", "addr", "access-key-id", "secret-access-key", "exec", "logging", "health-window", "pprof", "heartbeat-url", "heartbeat-interval"},
		"DBConfig":      {"path", "meta-path", "monitor-interval", "checkpoint-interval", "min-checkpoint-page-count", "max-checkpoint-page-count", "replicas", "restore-if-db-not-exists", "dir", "pattern", "recursive", "watch"},
		"ReplicaConfig": {"type", "name", "path", "url", "retention", "retention-check-interval", "snapshot-interval", "sync-interval", "validation-interval", "age", "bucket", "region", "endpoint", "force-path-style", "skip-verify", "access-key-id", "secret-access-key", "account-name", "account-key", "host", "user", "password", "key-path", "host-key", "known-hosts-path"},
		"LoggingConfig": {"level", "type", "stderr"},
		"AgeConfig":     {"identities", "recipients"},
	}[typ]
	best, bestD := "", 4
	for _, k := range known {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// recordLines copies the line of each dbs and replicas entry into cfg.
func recordLines(root *yaml.Node, cfg *Config) {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return
	}
	dbs := mappingValue(root.Content[0], "dbs")
	if dbs == nil || dbs.Kind != yaml.SequenceNode {
		return
	}
	for i, n := range dbs.Content {
		if i >= len(cfg.DBs) || cfg.DBs[i] == nil {
			continue
		}
		cfg.DBs[i].Line = n.Line
		reps := mappingValue(n, "replicas")
		if reps == nil || reps.Kind != yaml.SequenceNode {
			continue
		}
		for j, rn := range reps.Content {
			if j < len(cfg.DBs[i].Replicas) && cfg.DBs[i].Replicas[j] != nil {
				cfg.DBs[i].Replicas[j].Line = rn.Line
			}
		}
	}
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// normalize expands paths, derives replica types and names, propagates
// global credentials, and validates.
func (c *Config) normalize() error {
	// Level and type are read in any case, and "warning" is "warn", as
	// v0.3 reads them; anything else is a typo, and an error.
	level := strings.ToLower(c.Logging.Level)
	switch level {
	case "", "debug", "info", "warn", "error":
	case "warning":
		level = "warn"
	default:
		return fmt.Errorf("logging.level %q: use debug, info, warn or error", c.Logging.Level)
	}
	c.Logging.Level = level
	c.Logging.Type = strings.ToLower(c.Logging.Type)
	switch c.Logging.Type {
	case "", "text", "json":
	default:
		return fmt.Errorf("logging.type %q: use text or json", c.Logging.Type)
	}
	if c.HealthWindow != nil && *c.HealthWindow <= 0 {
		return errors.New("health-window must be positive")
	}
	if err := c.checkHeartbeat(); err != nil {
		return err
	}
	seen := map[string]int{}
	var paths, dirs []*DBConfig
	for i, db := range c.DBs {
		if db == nil {
			return fmt.Errorf("dbs entry %d is empty", i+1)
		}
		if err := db.normalize(c); err != nil {
			return err
		}
		if db.Dir != "" {
			dirs = append(dirs, db)
			continue
		}
		if first, ok := seen[db.Path]; ok {
			return fmt.Errorf("line %d: path: database %s is listed twice (first at line %d)", db.Line, db.Path, first)
		}
		seen[db.Path] = db.Line
		paths = append(paths, db)
	}
	if err := checkDirOverlaps(paths, dirs); err != nil {
		return err
	}
	if err := checkReplicaDests(append(slices.Clip(paths), dirs...)); err != nil {
		return err
	}
	c.DBs, c.Dirs = paths, append(c.Dirs, dirs...)
	return nil
}

func (db *DBConfig) normalize(c *Config) error {
	if db.Dir != "" || db.Pattern != "" || db.Recursive || db.Watch {
		if err := db.normalizeDir(); err != nil {
			return err
		}
	} else if db.Path == "" {
		return fmt.Errorf("line %d: database entry has no path (give path: FILE, or dir: DIRECTORY with pattern:)", db.Line)
	} else {
		p, err := expandPath(db.Path)
		if err != nil {
			return fmt.Errorf("line %d: path: %w", db.Line, err)
		}
		db.Path = p
	}
	var err error
	if db.MetaPath != "" {
		if db.MetaPath, err = expandPath(db.MetaPath); err != nil {
			return fmt.Errorf("line %d: meta-path: %w", db.Line, err)
		}
	}
	// 0 turns checkpoint-interval and max-checkpoint-page-count off, as in
	// v0.3. A monitor-interval or min-checkpoint-page-count of 0 is
	// refused: v0.3 then replicated nothing at all, or refused to start.
	if db.MonitorInterval != nil && *db.MonitorInterval <= 0 {
		return fmt.Errorf("line %d: monitor-interval must be positive", db.Line)
	}
	if db.CheckpointInterval != nil && *db.CheckpointInterval < 0 {
		return fmt.Errorf("line %d: checkpoint-interval must not be negative (0 turns timed checkpoints off)", db.Line)
	}
	if db.MinCheckpointPageN != nil && *db.MinCheckpointPageN <= 0 {
		return fmt.Errorf("line %d: min-checkpoint-page-count must be positive", db.Line)
	}
	if db.MaxCheckpointPageN != nil && *db.MaxCheckpointPageN < 0 {
		return fmt.Errorf("line %d: max-checkpoint-page-count must not be negative (0 turns it off)", db.Line)
	}
	names := map[string]int{}
	var unnamed []*ReplicaConfig
	for i, r := range db.Replicas {
		if r == nil {
			return fmt.Errorf("line %d: replica entry %d of %s is empty", db.Line, i+1, db.label())
		}
		if err := r.normalize(c); err != nil {
			return err
		}
		if r.Name == "" {
			unnamed = append(unnamed, r)
			continue
		}
		if first, ok := names[r.Name]; ok {
			return fmt.Errorf("line %d: name: two replicas of %s are named %q (first at line %d): give each a distinct name", r.Line, db.label(), r.Name, first)
		}
		names[r.Name] = r.Line
	}
	// An unnamed replica is named after its type, as in v0.3; the second
	// of a type is TYPE2, and so on, skipping names already given.
	for _, r := range unnamed {
		r.Name = r.Type
		for n := 2; hasName(names, r.Name); n++ {
			r.Name = fmt.Sprintf("%s%d", r.Type, n)
		}
		names[r.Name] = r.Line
		if r.Name != r.Type {
			c.Notes = append(c.Notes, fmt.Sprintf("%sthe replica of %s has no name, and another %s replica is named %q: it is named %q", atLine(r.Line), db.label(), r.Type, r.Type, r.Name))
		}
	}
	return nil
}

func hasName(names map[string]int, name string) bool {
	_, ok := names[name]
	return ok
}

// normalize derives the replica's type and name and checks its keys.
func (r *ReplicaConfig) normalize(c *Config) error {
	at := atLine(r.Line)
	if r.Path != "" && !isPlainPath(r.Path) {
		return fmt.Errorf("%spath %q is a URL, not a path: write it as url: instead (and start a relative path with ./ when its first name has a colon)", at, redactURL(r.Path))
	}
	if r.Path != "" && r.URL != "" {
		return fmt.Errorf("%sreplica has both path and url: keep one", at)
	}
	if r.URL != "" && r.Bucket != "" {
		return fmt.Errorf("%sreplica has both url and bucket: keep one", at)
	}
	if r.URL != "" {
		parsed, err := parseReplicaURL(r.URL)
		if err != nil {
			return fmt.Errorf("%s%w", at, err)
		}
		if r.Type != "" && r.Type != parsed.Type {
			return fmt.Errorf("%stype %q does not match url scheme %q", at, r.Type, parsed.Type)
		}
		r.Type = parsed.Type
		if parsed.Type == "file" {
			r.Path, r.URL = parsed.Path, ""
		}
	}
	if r.Type == "" {
		switch {
		case r.Bucket != "":
			r.Type = "s3"
		case r.Path != "":
			r.Type = "file"
		default:
			return fmt.Errorf("%sreplica needs a path (a directory) or a url (file:// or s3://)", at)
		}
	}
	c.Warnings = append(c.Warnings, r.ignoredKeys()...)
	switch r.Type {
	case "file":
		if r.Path == "" {
			return fmt.Errorf("%sfile replica needs a path", at)
		}
		p, err := expandPath(r.Path)
		if err != nil {
			return fmt.Errorf("%spath: %w", at, err)
		}
		r.Path = p
	case "s3":
		if r.URL == "" && r.Bucket == "" {
			return fmt.Errorf("%ss3 replica needs a url (s3://BUCKET/PATH) or a bucket", at)
		}
		if _, err := newS3Client(r); err != nil {
			return fmt.Errorf("%s%w", at, err)
		}
		if r.AccessKeyID == "" && r.SecretAccessKey == "" {
			r.AccessKeyID, r.SecretAccessKey = c.AccessKeyID, c.SecretAccessKey
		}
	case "gcs":
		if err := checkGCSConfig(r, c); err != nil {
			return fmt.Errorf("%s%w", at, err)
		}
	case "abs":
		if err := checkABSConfig(r, c); err != nil {
			return fmt.Errorf("%s%w", at, err)
		}
	case "sftp":
		if err := checkSFTPConfig(r, c); err != nil {
			return fmt.Errorf("%s%w", at, err)
		}
	default:
		return fmt.Errorf("%sunknown replica type %q (supported: file, s3, gcs, abs, sftp)", at, r.Type)
	}
	for key, d := range map[string]*Duration{"sync-interval": r.SyncInterval, "retention-check-interval": r.RetentionCheckInterval} {
		if d != nil && *d <= 0 {
			return fmt.Errorf("%s%s must be positive", at, key)
		}
	}
	if r.Retention != nil && *r.Retention < 0 {
		return fmt.Errorf("%sretention must not be negative (0 keeps every snapshot)", at)
	}
	for key, d := range map[string]*Duration{"snapshot-interval": r.SnapshotInterval, "validation-interval": r.ValidationInterval} {
		if d != nil && *d < 0 {
			return fmt.Errorf("%s%s must not be negative (0 turns it off)", at, key)
		}
	}
	return nil
}

// backendKeys lists, per replica type, the backend keys it reads; the
// other backends' keys mean nothing to it.
var backendKeys = map[string][]string{
	"file": {},
	"s3":   {"bucket", "region", "endpoint", "force-path-style", "skip-verify", "access-key-id", "secret-access-key"},
	"gcs":  {"bucket"},
	"abs":  {"bucket", "endpoint", "account-name", "account-key"},
	"sftp": {"host", "user", "password", "key-path", "host-key", "known-hosts-path"},
}

// ignoredKeys returns a warning for each backend key set on a replica whose
// type does not read it. Values are never shown: the key may be a secret.
func (r *ReplicaConfig) ignoredKeys() []string {
	known, ok := backendKeys[r.Type]
	if !ok {
		return nil
	}
	set := map[string]bool{
		"bucket": r.Bucket != "", "region": r.Region != "", "endpoint": r.Endpoint != "",
		"force-path-style": r.ForcePathStyle != nil, "skip-verify": r.SkipVerify,
		"access-key-id": r.AccessKeyID != "", "secret-access-key": r.SecretAccessKey != "",
		"account-name": r.AccountName != "", "account-key": r.AccountKey != "",
		"host": r.Host != "", "user": r.User != "", "password": r.Password != "", "key-path": r.KeyPath != "",
		"host-key": r.HostKey != "", "known-hosts-path": r.KnownHostsPath != "",
	}
	var ignored []string
	for key, isSet := range set {
		if isSet && !slices.Contains(known, key) {
			ignored = append(ignored, key)
		}
	}
	if len(ignored) == 0 {
		return nil
	}
	sort.Strings(ignored)
	hint := ""
	if r.Type == "gcs" && slices.Contains(ignored, "endpoint") {
		hint = " (for a GCS emulator, set STORAGE_EMULATOR_HOST=HOST:PORT in the environment)"
	}
	verb := "they do"
	if len(ignored) == 1 {
		verb = "it does"
	}
	return []string{fmt.Sprintf("%s%s replica: %s ignored: %s not apply to this type, as in v0.3%s",
		atLine(r.Line), r.Type, strings.Join(ignored, ", "), verb, hint)}
}

// atLine returns "line N: " for an entry read from the config file, and ""
// for one built from the command line (line 0).
func atLine(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf("line %d: ", n)
}

// Two replicas must not write to one place, in one database or across
// databases: each one's retention prunes the other's generations by its own
// clock and deletes them once they fall quiet, and a restore picks the
// newest generation, which may be the other database's. Nor may one
// replica's path lie inside another's: removing one replica removes the
// other, and retention deletes whatever lies under the outer one's
// generations/. Across processes this needs a lease; within one config,
// checkReplicaDests refuses it at load.

// replicaDest is where a replica's files live, spelt so that two replicas
// that write to the same place have equal store and root.
type replicaDest struct {
	store string // "file", or "s3 ENDPOINT-HOST BUCKET" (no host for AWS)
	root  string // cleaned absolute directory, or key prefix without end slashes
	shown string // for messages
}

// destOf returns the destination of a normalized replica config.
func destOf(r *ReplicaConfig) (replicaDest, bool) {
	switch r.Type {
	case "file":
		return replicaDest{store: "file", root: filepath.Clean(r.Path), shown: r.Path}, true
	case "s3":
		c, err := newS3Client(r)
		if err != nil {
			return replicaDest{}, false
		}
		host := endpointHost(c.Endpoint)
		shown := "s3://" + c.Bucket
		if p := strings.Trim(c.Path, "/"); p != "" {
			shown += "/" + p
		}
		if host != "" {
			shown += " at " + host
		}
		return replicaDest{store: "s3 " + host + " " + c.Bucket, root: strings.Trim(c.Path, "/"), shown: shown}, true
	case "gcs":
		return gcsDest(r)
	case "abs":
		return absDest(r)
	case "sftp":
		return sftpDest(r)
	}
	return replicaDest{}, false
}

// endpointHost returns an endpoint's host, lower case and without the
// scheme's default port; "" for no endpoint (AWS).
func endpointHost(endpoint string) string {
	if endpoint == "" {
		return ""
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return strings.ToLower(strings.TrimRight(endpoint, "/"))
	}
	host := strings.ToLower(u.Host)
	if p := u.Port(); p == "443" && u.Scheme == "https" || p == "80" && u.Scheme == "http" {
		host = strings.ToLower(u.Hostname())
	}
	return host
}

// contains reports whether root a holds root b (equal, or b beneath a).
func (a replicaDest) contains(b replicaDest) bool {
	if a.store != b.store {
		return false
	}
	if a.root == b.root {
		return true
	}
	sep := "/"
	if a.store == "file" {
		sep = string(filepath.Separator)
	}
	return a.root == "" || a.root == sep || strings.HasPrefix(b.root, strings.TrimSuffix(a.root, sep)+sep)
}

// checkReplicaDests refuses two replicas with one destination, or one
// inside the other. The error is at the later one's line and names the
// earlier one's.
func checkReplicaDests(dbs []*DBConfig) error {
	type placed struct {
		dest replicaDest
		r    *ReplicaConfig
		db   string
	}
	name := func(p placed) string { return fmt.Sprintf("replica %q of %s", p.r.Name, p.db) }
	var all []placed
	for _, db := range dbs {
		for _, r := range db.Replicas {
			d, ok := destOf(r)
			if !ok {
				continue
			}
			cur := placed{d, r, db.label()}
			for _, prev := range all {
				other := name(prev)
				if prev.r.Line > 0 {
					other += fmt.Sprintf(" (line %d)", prev.r.Line)
				}
				var where string
				switch {
				case prev.dest.store != cur.dest.store:
					continue
				case prev.dest.root == cur.dest.root:
					return fmt.Errorf("%s%s writes to %s, as does %s: retention of each would delete the other's generations, and a restore could return the other's database; give each replica its own path",
						atLine(r.Line), name(cur), d.shown, other)
				case prev.dest.contains(cur.dest):
					where = "inside " + prev.dest.shown
				case cur.dest.contains(prev.dest):
					where = "which holds " + prev.dest.shown
				default:
					continue
				}
				return fmt.Errorf("%s%s writes to %s, %s, where %s writes: replicas must not nest (removing one removes the other, and retention deletes what lies under generations/); give each replica a path outside the others'",
					atLine(r.Line), name(cur), d.shown, where, other)
			}
			all = append(all, cur)
		}
	}
	return nil
}

// expandPath expands a leading ~ and makes the path absolute and clean.
func expandPath(p string) (string, error) {
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("expand ~: %w", err)
		}
		p = filepath.Join(home, p[1:])
	}
	return filepath.Abs(p)
}

// DBConfig finds a database by path.
func (c *Config) DBConfig(path string) *DBConfig {
	p, err := expandPath(path)
	if err != nil {
		return nil
	}
	for _, db := range c.DBs {
		if db.Path == p {
			return db
		}
	}
	return nil
}
