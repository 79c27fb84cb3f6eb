package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/gcs"
)

// gcsCredentialsHint says where GCS credentials come from: never the URL
// or the config file.
const gcsCredentialsHint = "credentials come from GOOGLE_APPLICATION_CREDENTIALS or the application default credentials"

// parseGCSURL turns a gcs:// replica URL (s, and u parsed from it) into a
// replica config with its type set. shown is s without its password, for
// errors.
func parseGCSURL(s, shown string, u *url.URL) (*ReplicaConfig, error) {
	switch {
	case u.Opaque != "" || u.Host == "":
		return nil, fmt.Errorf("replica URL %q: write gcs://BUCKET/PATH", shown)
	case u.User != nil:
		return nil, fmt.Errorf("replica URL %q: a gcs URL carries no credentials: %s", shown, gcsCredentialsHint)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("replica URL %q: a gcs URL takes no ?query or #fragment: write gcs://BUCKET/PATH", shown)
	}
	if _, err := gcs.ParseURL(s); err != nil {
		return nil, err
	}
	return &ReplicaConfig{Type: "gcs", URL: s}, nil
}

// checkGCSConfig validates a gcs replica's keys (and URL) at config load.
// A key of another backend is refused rather than ignored: an endpoint
// ignored would send the backup to Google instead of the store meant.
// The caller puts the entry's line in front of the error.
func checkGCSConfig(rc *ReplicaConfig, c *Config) error {
	if rc.URL == "" && rc.Bucket == "" {
		return errors.New("gcs replica needs a url (gcs://BUCKET/PATH) or a bucket")
	}
	_, err := newGCSClient(rc, nil)
	return err
}

// newGCSClient builds the gcs replica client from a normalized replica
// config (url, or bucket and path); onOp, if not nil, counts its requests.
func newGCSClient(rc *ReplicaConfig, onOp func(op string, bytes int64)) (litestream.ReplicaClient, error) {
	c := &gcs.ReplicaClient{Bucket: rc.Bucket, Path: gcs.CleanPath(rc.Path)}
	if rc.URL != "" {
		parsed, err := gcs.ParseURL(rc.URL)
		if err != nil {
			return nil, err
		}
		c = parsed
	}
	c.OnOp = onOp
	return c, nil
}

// gcsDest returns where a normalized gcs replica writes, for
// checkReplicaDests; false if that cannot be told.
func gcsDest(rc *ReplicaConfig) (replicaDest, bool) {
	client, err := newGCSClient(rc, nil)
	if err != nil {
		return replicaDest{}, false
	}
	c := client.(*gcs.ReplicaClient)
	shown := "gcs://" + c.Bucket
	if c.Path != "" {
		shown += "/" + c.Path
	}
	return replicaDest{store: "gcs " + c.Bucket, root: c.Path, shown: shown}, true
}

// gcsLogAttrs returns the startup log's attributes of a gcs client
// (bucket, path, and the emulator's host when one is in use), never a
// credential.
func gcsLogAttrs(c litestream.ReplicaClient) []any {
	gc, ok := c.(*gcs.ReplicaClient)
	if !ok {
		return nil
	}
	attrs := []any{"bucket", gc.Bucket, "path", gc.Path}
	if h := os.Getenv("STORAGE_EMULATOR_HOST"); h != "" {
		attrs = append(attrs, "emulator", endpointForLog(h))
	}
	return attrs
}
