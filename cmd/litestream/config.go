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
	Line               int              `yaml:"-"` // line of the entry in the file
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

// DefaultConfigPath returns $LITESTREAM_CONFIG, else /etc/litestream.yml.
func DefaultConfigPath() string {
	if p := os.Getenv("LITESTREAM_CONFIG"); p != "" {
		return p
	}
	return "/etc/litestream.yml"
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
	if expandEnv {
		data = []byte(os.ExpandEnv(string(data)))
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, describeYAMLError(err)
	}
	// A second pass over the node tree records each entry's line.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, describeYAMLError(err)
	}
	recordLines(&root, &cfg)
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// describeYAMLError rewrites the YAML library's messages into ours.
func describeYAMLError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	msg = strings.TrimPrefix(msg, "yaml: ")
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if m := unknownFieldRE.FindStringSubmatch(l); m != nil {
			l = fmt.Sprintf("line %s: unknown key %q in %s%s", m[1], m[2], sectionName(m[3]), suggestKey(m[2], m[3]))
		}
		if l != "" {
			lines = append(lines, l)
		}
	}
	return errors.New(strings.Join(lines, "; "))
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
		"Config":        {"dbs", "addr", "access-key-id", "secret-access-key", "exec", "logging", "health-window", "pprof"},
		"DBConfig":      {"path", "meta-path", "monitor-interval", "checkpoint-interval", "min-checkpoint-page-count", "max-checkpoint-page-count", "replicas"},
		"ReplicaConfig": {"type", "name", "path", "url", "retention", "retention-check-interval", "snapshot-interval", "sync-interval", "validation-interval", "age", "bucket", "region", "endpoint", "force-path-style", "skip-verify", "access-key-id", "secret-access-key"},
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
	switch c.Logging.Level {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("logging.level %q: use debug, info, warn or error", c.Logging.Level)
	}
	switch c.Logging.Type {
	case "", "text", "json":
	default:
		return fmt.Errorf("logging.type %q: use text or json", c.Logging.Type)
	}
	if c.HealthWindow != nil && *c.HealthWindow <= 0 {
		return errors.New("health-window must be positive")
	}
	seen := map[string]int{}
	for i, db := range c.DBs {
		if db == nil {
			return fmt.Errorf("dbs entry %d is empty", i+1)
		}
		if err := db.normalize(c); err != nil {
			return err
		}
		if first, ok := seen[db.Path]; ok {
			return fmt.Errorf("line %d: path: database %s is listed twice (first at line %d)", db.Line, db.Path, first)
		}
		seen[db.Path] = db.Line
	}
	return nil
}

func (db *DBConfig) normalize(c *Config) error {
	if db.Path == "" {
		return fmt.Errorf("line %d: database entry has no path", db.Line)
	}
	p, err := expandPath(db.Path)
	if err != nil {
		return fmt.Errorf("line %d: path: %w", db.Line, err)
	}
	db.Path = p
	if db.MetaPath != "" {
		if db.MetaPath, err = expandPath(db.MetaPath); err != nil {
			return fmt.Errorf("line %d: meta-path: %w", db.Line, err)
		}
	}
	for key, d := range map[string]*Duration{"monitor-interval": db.MonitorInterval, "checkpoint-interval": db.CheckpointInterval} {
		if d != nil && *d <= 0 {
			return fmt.Errorf("line %d: %s must be positive", db.Line, key)
		}
	}
	for key, n := range map[string]*int{"min-checkpoint-page-count": db.MinCheckpointPageN, "max-checkpoint-page-count": db.MaxCheckpointPageN} {
		if n != nil && *n <= 0 {
			return fmt.Errorf("line %d: %s must be positive", db.Line, key)
		}
	}
	names := map[string]int{}
	for i, r := range db.Replicas {
		if r == nil {
			return fmt.Errorf("line %d: replica entry %d of %s is empty", db.Line, i+1, db.Path)
		}
		if err := r.normalize(c); err != nil {
			return err
		}
		if first, ok := names[r.Name]; ok {
			return fmt.Errorf("line %d: name: two replicas of %s are named %q (first at line %d): give each a distinct name", r.Line, db.Path, r.Name, first)
		}
		names[r.Name] = r.Line
	}
	return nil
}

// normalize derives the replica's type and name and checks its keys.
func (r *ReplicaConfig) normalize(c *Config) error {
	if r.Path != "" && r.URL != "" {
		return fmt.Errorf("line %d: replica has both path and url: keep one", r.Line)
	}
	if r.URL != "" {
		u, err := url.Parse(r.URL)
		if err != nil {
			return fmt.Errorf("line %d: url: %w", r.Line, err)
		}
		scheme := u.Scheme
		if scheme == "" {
			scheme = "file"
		}
		if r.Type != "" && r.Type != scheme {
			return fmt.Errorf("line %d: type %q does not match url scheme %q", r.Line, r.Type, scheme)
		}
		r.Type = scheme
		if scheme == "file" {
			r.Path = u.Path
			if u.Scheme == "" {
				r.Path = r.URL
			}
			r.URL = ""
		}
	}
	if r.Type == "" {
		switch {
		case r.Bucket != "":
			r.Type = "s3"
		case r.Path != "":
			r.Type = "file"
		default:
			return fmt.Errorf("line %d: replica needs a path (a directory) or a url (file:// or s3://)", r.Line)
		}
	}
	switch r.Type {
	case "file":
		if r.Path == "" {
			return fmt.Errorf("line %d: file replica needs a path", r.Line)
		}
		p, err := expandPath(r.Path)
		if err != nil {
			return fmt.Errorf("line %d: path: %w", r.Line, err)
		}
		r.Path = p
	case "s3":
		if r.URL == "" && r.Bucket == "" {
			return fmt.Errorf("line %d: s3 replica needs a url (s3://BUCKET/PATH) or a bucket", r.Line)
		}
		if r.AccessKeyID == "" && r.SecretAccessKey == "" {
			r.AccessKeyID, r.SecretAccessKey = c.AccessKeyID, c.SecretAccessKey
		}
	case "gcs", "abs", "sftp":
		return fmt.Errorf("line %d: replica type %q is not supported by this build yet (supported: file, s3)", r.Line, r.Type)
	default:
		return fmt.Errorf("line %d: unknown replica type %q (supported: file, s3)", r.Line, r.Type)
	}
	if r.Name == "" {
		r.Name = r.Type
	}
	for key, d := range map[string]*Duration{"sync-interval": r.SyncInterval, "retention": r.Retention, "retention-check-interval": r.RetentionCheckInterval} {
		if d != nil && *d <= 0 {
			return fmt.Errorf("line %d: %s must be positive", r.Line, key)
		}
	}
	for key, d := range map[string]*Duration{"snapshot-interval": r.SnapshotInterval, "validation-interval": r.ValidationInterval} {
		if d != nil && *d < 0 {
			return fmt.Errorf("line %d: %s must not be negative (0 turns it off)", r.Line, key)
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
