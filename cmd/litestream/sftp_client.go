package main

import (
	"errors"
	"net/url"

	"github.com/litestream-go/litestream"
)

// This file is a stub, to be replaced by the sftp backend's wiring.

var errSFTPNotBuilt = errors.New("sftp replicas are not supported by this build yet (supported: file, s3)")

// parseSFTPURL turns a sftp:// replica URL (s, and u parsed from it) into a
// replica config with its type set. shown is s without its password, for
// errors.
func parseSFTPURL(s, shown string, u *url.URL) (*ReplicaConfig, error) {
	return nil, errors.New("replica URL " + shown + ": " + errSFTPNotBuilt.Error())
}

// checkSFTPConfig validates a sftp replica's keys (and URL) at config load.
// The caller puts the entry's line in front of the error.
func checkSFTPConfig(rc *ReplicaConfig, c *Config) error { return errSFTPNotBuilt }

// newSFTPClient builds the sftp replica client from a normalized replica
// config; onOp, if not nil, counts its requests.
func newSFTPClient(rc *ReplicaConfig, onOp func(op string, bytes int64)) (litestream.ReplicaClient, error) {
	return nil, errSFTPNotBuilt
}

// sftpDest returns where a normalized sftp replica writes, for
// checkReplicaDests; false if that cannot be told.
func sftpDest(rc *ReplicaConfig) (replicaDest, bool) { return replicaDest{}, false }

// sftpLogAttrs returns the startup log's attributes of a sftp client
// (bucket, path, host, ...), never a credential.
func sftpLogAttrs(c litestream.ReplicaClient) []any { return nil }
