package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/abs"
)

// parseABSURL turns an abs:// replica URL (s, and u parsed from it) into a
// replica config with its type set. shown is s without its password, for
// errors.
func parseABSURL(s, shown string, u *url.URL) (*ReplicaConfig, error) {
	if u.Opaque != "" || u.Host == "" {
		return nil, fmt.Errorf("replica URL %q: write abs://[ACCOUNT@]CONTAINER/PATH", shown)
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			return nil, fmt.Errorf("replica URL %q: an abs URL carries no account key: set account-key in the config, or %s", shown, abs.AccountKeyEnv)
		}
	}
	if _, err := abs.ParseURL(s); err != nil {
		return nil, err // it quotes the URL without a password
	}
	return &ReplicaConfig{Type: "abs", URL: s}, nil
}

// buildABSClient builds the abs client of a replica config: the URL (if
// any) first, then the explicit keys, which win, as in v0.3.
func buildABSClient(rc *ReplicaConfig) (*abs.ReplicaClient, error) {
	c := &abs.ReplicaClient{Bucket: rc.Bucket, Path: strings.Trim(rc.Path, "/")}
	if rc.URL != "" {
		parsed, err := abs.ParseURL(rc.URL)
		if err != nil {
			return nil, err
		}
		c = parsed
	}
	if rc.AccountName != "" {
		c.AccountName = rc.AccountName
	}
	if rc.AccountKey != "" {
		c.AccountKey = rc.AccountKey
	}
	if rc.Endpoint != "" {
		c.Endpoint = rc.Endpoint
	}
	return c, nil
}

// checkABSConfig validates an abs replica's keys (and URL) at config load.
// The caller puts the entry's line in front of the error. The account key
// may come from the environment when the replica starts, so its absence
// is told then, by the store check.
func checkABSConfig(rc *ReplicaConfig, c *Config) error {
	if rc.URL == "" && rc.Bucket == "" {
		return errors.New("abs replica needs a url (abs://ACCOUNT@CONTAINER/PATH) or a bucket (the container)")
	}
	client, err := buildABSClient(rc)
	if err != nil {
		return err
	}
	if client.AccountName == "" {
		return errors.New("abs replica has no storage account: write abs://ACCOUNT@CONTAINER/PATH, or set account-name")
	}
	if client.Endpoint != "" {
		if u, err := url.Parse(client.Endpoint); err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("abs endpoint %q is not an http(s) URL: write it as https://ACCOUNT.blob.core.windows.net/ or http://HOST:PORT/ACCOUNT", redactURL(client.Endpoint))
		}
	}
	return nil
}

// newABSClient builds the abs replica client from a normalized replica
// config; onOp, if not nil, counts its requests.
func newABSClient(rc *ReplicaConfig, onOp func(op string, bytes int64)) (litestream.ReplicaClient, error) {
	c, err := buildABSClient(rc)
	if err != nil {
		return nil, err
	}
	c.OnOp = onOp
	return c, nil
}

// absDest returns where a normalized abs replica writes, for
// checkReplicaDests; false if that cannot be told. The account and the
// container are lower case on Azure; the endpoint's host defaults to the
// account's.
func absDest(rc *ReplicaConfig) (replicaDest, bool) {
	c, err := buildABSClient(rc)
	if err != nil || c.AccountName == "" {
		return replicaDest{}, false
	}
	account, container := strings.ToLower(c.AccountName), strings.ToLower(c.Bucket)
	host := endpointHost(c.Endpoint)
	if host == "" {
		host = account + ".blob.core.windows.net"
	}
	if u, err := url.Parse(c.Endpoint); err == nil && c.Endpoint != "" {
		host += strings.TrimRight(u.Path, "/") // Azurite: the account is the path
	}
	shown := "abs://" + c.AccountName + "@" + c.Bucket
	if p := strings.Trim(c.Path, "/"); p != "" {
		shown += "/" + p
	}
	if c.Endpoint != "" {
		shown += " at " + host
	}
	return replicaDest{store: "abs " + host + " " + account + " " + container, root: strings.Trim(c.Path, "/"), shown: shown}, true
}

// absLogAttrs returns the startup log's attributes of an abs client
// (account, container, path, endpoint), never the account key.
func absLogAttrs(c litestream.ReplicaClient) []any {
	ac, ok := c.(*abs.ReplicaClient)
	if !ok {
		return nil
	}
	attrs := []any{"account", ac.AccountName, "bucket", ac.Bucket, "path", ac.Path}
	if ac.Endpoint != "" {
		attrs = append(attrs, "endpoint", endpointForLog(ac.Endpoint))
	}
	return attrs
}
