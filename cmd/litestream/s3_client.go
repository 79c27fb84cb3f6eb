package main

import (
	"github.com/litestream-go/litestream/s3"
)

// newS3Client builds the S3 replica client from a replica config: the URL
// (if any) first, then the explicit keys, which win.
func newS3Client(rc *ReplicaConfig) (*s3.ReplicaClient, error) {
	c := &s3.ReplicaClient{Bucket: rc.Bucket, Path: rc.Path}
	if rc.URL != "" {
		parsed, err := s3.ParseURL(rc.URL)
		if err != nil {
			return nil, err
		}
		c = parsed
	} else {
		c.ApplyHost()
	}
	if rc.Region != "" {
		c.Region = rc.Region
	}
	if rc.Endpoint != "" {
		c.Endpoint = rc.Endpoint
	}
	if rc.ForcePathStyle != nil {
		c.ForcePathStyle = rc.ForcePathStyle
	}
	if rc.SkipVerify {
		c.SkipVerify = true
	}
	c.AccessKeyID, c.SecretAccessKey = rc.AccessKeyID, rc.SecretAccessKey
	return c, nil
}
