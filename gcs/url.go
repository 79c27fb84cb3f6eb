package gcs

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

// ParseURL builds a client from a replica URL, gcs://BUCKET/PATH, where
// PATH is the object name prefix, cleaned and without a leading slash as
// Litestream v0.3 reads it. The URL carries no credentials and no query.
func ParseURL(s string) (*ReplicaClient, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("gcs URL %q: %w", s, err)
	}
	switch {
	case u.Scheme != "gcs":
		return nil, fmt.Errorf("gcs URL %q: scheme must be gcs://", s)
	case u.Opaque != "" || u.Host == "":
		return nil, fmt.Errorf("gcs URL %q has no bucket: use gcs://BUCKET/PATH", u.Redacted())
	case u.User != nil:
		return nil, fmt.Errorf("gcs URL %q: a gcs URL carries no credentials: set GOOGLE_APPLICATION_CREDENTIALS, or use application default credentials", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("gcs URL %q takes no ?query or #fragment: use gcs://BUCKET/PATH", s)
	}
	return &ReplicaClient{Bucket: u.Host, Path: strings.TrimPrefix(CleanPath(u.Path), "/")}, nil
}

// CleanPath returns an object name prefix as the client uses it: cleaned
// (no empty or dot elements, no trailing slash), "" for none. A leading
// slash stays: Litestream v0.3 keeps it in the object names of a config
// file's path (path: /db gives /db/generations/...), so a replica it
// wrote is found under the same names.
func CleanPath(p string) string {
	if p == "" {
		return ""
	}
	if p = path.Clean(p); p == "." {
		return ""
	}
	return p
}
