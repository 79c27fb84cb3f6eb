package main

import (
	"errors"
	"net/url"

	"github.com/litestream-go/litestream"
)

// This file is a stub, to be replaced by the abs backend's wiring.

var errABSNotBuilt = errors.New("abs replicas are not supported by this build yet (supported: file, s3)")

// parseABSURL turns a abs:// replica URL (s, and u parsed from it) into a
// replica config with its type set. shown is s without its password, for
// errors.
func parseABSURL(s, shown string, u *url.URL) (*ReplicaConfig, error) {
	return nil, errors.New("replica URL " + shown + ": " + errABSNotBuilt.Error())
}

// checkABSConfig validates a abs replica's keys (and URL) at config load.
// The caller puts the entry's line in front of the error.
func checkABSConfig(rc *ReplicaConfig, c *Config) error { return errABSNotBuilt }

// newABSClient builds the abs replica client from a normalized replica
// config; onOp, if not nil, counts its requests.
func newABSClient(rc *ReplicaConfig, onOp func(op string, bytes int64)) (litestream.ReplicaClient, error) {
	return nil, errABSNotBuilt
}

// absDest returns where a normalized abs replica writes, for
// checkReplicaDests; false if that cannot be told.
func absDest(rc *ReplicaConfig) (replicaDest, bool) { return replicaDest{}, false }

// absLogAttrs returns the startup log's attributes of a abs client
// (bucket, path, host, ...), never a credential.
func absLogAttrs(c litestream.ReplicaClient) []any { return nil }
