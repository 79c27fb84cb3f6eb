package s3

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/litestream-go/litestream/internal/storeclient"
)

// ParseURL builds a client from a replica URL: s3://BUCKET/PATH. A host
// BUCKET.localhost:PORT means a local S3-compatible server over http with
// path-style addressing; known providers' hosts map to their endpoints.
// Query parameters endpoint, region, forcePathStyle and skipVerify set the
// fields of the same names.
func ParseURL(s string) (*ReplicaClient, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("s3 URL %q: %w", s, err)
	}
	if u.Scheme != "s3" {
		return nil, fmt.Errorf("s3 URL %q: scheme must be s3://", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("s3 URL %q has no bucket: use s3://BUCKET/PATH", s)
	}
	c := &ReplicaClient{Bucket: u.Host, Path: strings.Trim(u.Path, "/")}
	c.ApplyHost()
	q := u.Query()
	if v := q.Get("endpoint"); v != "" {
		c.Endpoint = v
	}
	if v := q.Get("region"); v != "" {
		c.Region = v
	}
	if v := q.Get("forcePathStyle"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("s3 URL %q: forcePathStyle must be true or false", s)
		}
		c.ForcePathStyle = &b
	}
	if v := q.Get("skipVerify"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("s3 URL %q: skipVerify must be true or false", s)
		}
		c.SkipVerify = b
	}
	return c, nil
}

// ApplyHost interprets a Bucket that is a host name (from a URL or the
// config file): a local server (BUCKET.localhost, with or without a
// port, as in v0.3), or a known provider, becomes the bucket
// name plus endpoint, region and addressing style.
func (c *ReplicaClient) ApplyHost() {
	host, port, _ := strings.Cut(c.Bucket, ":")
	if strings.HasSuffix(host, ".localhost") || host == "localhost" && port != "" {
		bucket := strings.TrimSuffix(host, ".localhost")
		c.Bucket, c.Endpoint = bucket, "http://localhost"
		if port != "" {
			c.Endpoint += ":" + port
		}
		t := true
		c.ForcePathStyle = &t
		c.Region = storeclient.OrDefault(c.Region, "us-east-1")
		return
	}
	parts := strings.Split(host, ".")
	n := len(parts)
	set := func(bucket, endpoint, region string) {
		c.Bucket, c.Endpoint, c.Region = bucket, endpoint, storeclient.OrDefault(c.Region, region)
	}
	switch {
	case n >= 5 && parts[n-4] == "s3" && strings.HasSuffix(host, ".backblazeb2.com"): // BUCKET.s3.REGION.backblazeb2.com
		region := parts[n-3]
		set(strings.Join(parts[:n-4], "."), "https://s3."+region+".backblazeb2.com", region)
	case n >= 4 && strings.HasSuffix(host, ".digitaloceanspaces.com"): // BUCKET.REGION.digitaloceanspaces.com
		region := parts[n-3]
		set(strings.Join(parts[:n-3], "."), "https://"+region+".digitaloceanspaces.com", region)
	case n >= 4 && strings.HasSuffix(host, ".linodeobjects.com"): // BUCKET.REGION.linodeobjects.com
		region := parts[n-3]
		set(strings.Join(parts[:n-3], "."), "https://"+region+".linodeobjects.com", region)
	case n >= 5 && parts[n-4] == "s3" && strings.HasSuffix(host, ".scw.cloud"): // BUCKET.s3.REGION.scw.cloud
		region := parts[n-3]
		set(strings.Join(parts[:n-4], "."), "https://s3."+region+".scw.cloud", region)
	case n >= 4 && strings.HasSuffix(host, ".s3.filebase.com"): // BUCKET.s3.filebase.com
		set(strings.Join(parts[:n-3], "."), "https://s3.filebase.com", "us-east-1")
	case n >= 5 && parts[n-4] == "s3" && strings.HasSuffix(host, ".amazonaws.com"): // BUCKET.s3.REGION.amazonaws.com
		c.Bucket, c.Region = strings.Join(parts[:n-4], "."), storeclient.OrDefault(c.Region, parts[n-3])
	case n >= 4 && strings.HasSuffix(host, ".s3.amazonaws.com"): // BUCKET.s3.amazonaws.com
		c.Bucket = strings.Join(parts[:n-3], ".")
	}
}
