package main

import (
	"errors"

	"github.com/litestream-go/litestream"
)

// newS3Client builds the S3 replica client from a replica config.
func newS3Client(rc *ReplicaConfig) (litestream.ReplicaClient, error) {
	return nil, errors.New("s3 replicas are not available in this build")
}
