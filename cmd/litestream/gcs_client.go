package main

import (
	"errors"
	"net/url"

	"github.com/litestream-go/litestream"
)

// This file is a stub, to be replaced by the gcs backend's wiring.

var errGCSNotBuilt = errors.New("gcs replicas are not supported by this build yet (supported: file, s3)")

// parseGCSURL turns a gcs:// replica URL (s, and u parsed from it) into a
// replica config with its type set. shown is s without its password, for
// errors.
func parseGCSURL(s, shown string, u *url.URL) (*ReplicaConfig, error) {
	return nil, errors.New("replica URL " + shown + ": " + errGCSNotBuilt.Error())
}

// checkGCSConfig validates a gcs replica's keys (and URL) at config load.
// The caller puts the entry's line in front of the error.
func checkGCSConfig(rc *ReplicaConfig, c *Config) error { return errGCSNotBuilt }

// newGCSClient builds the gcs replica client from a normalized replica
// config; onOp, if not nil, counts its requests.
func newGCSClient(rc *ReplicaConfig, onOp func(op string, bytes int64)) (litestream.ReplicaClient, error) {
	return nil, errGCSNotBuilt
}

// gcsDest returns where a normalized gcs replica writes, for
// checkReplicaDests; false if that cannot be told.
func gcsDest(rc *ReplicaConfig) (replicaDest, bool) { return replicaDest{}, false }

// gcsLogAttrs returns the startup log's attributes of a gcs client
// (bucket, path, host, ...), never a credential.
func gcsLogAttrs(c litestream.ReplicaClient) []any { return nil }
