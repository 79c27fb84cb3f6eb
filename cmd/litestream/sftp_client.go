package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/sftp"
)

// parseSFTPURL turns a sftp:// replica URL (s, and u parsed from it) into a
// replica config with its type set. shown is s without its password, for
// errors.
func parseSFTPURL(s, shown string, u *url.URL) (*ReplicaConfig, error) {
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, fmt.Errorf("replica URL %q: write sftp://USER[:PASSWORD]@HOST[:PORT]/PATH", shown)
	}
	if _, err := sftp.ParseURL(s); err != nil {
		return nil, err // it quotes the URL without a password
	}
	return &ReplicaConfig{Type: "sftp", URL: s}, nil
}

// buildSFTPClient builds the sftp client of a replica config: the URL (if
// any) first, then the explicit keys, which win, as in v0.3. Paths of key
// files are expanded (~, relative to the working directory).
func buildSFTPClient(rc *ReplicaConfig) (*sftp.ReplicaClient, error) {
	c := &sftp.ReplicaClient{Host: rc.Host, Path: rc.Path}
	if rc.URL != "" {
		parsed, err := sftp.ParseURL(rc.URL)
		if err != nil {
			return nil, err
		}
		c = parsed
	}
	if rc.User != "" {
		c.User = rc.User
	}
	if rc.Password != "" {
		c.Password = rc.Password
	}
	c.HostKey = rc.HostKey
	for _, f := range []struct {
		key string
		in  string
		out *string
	}{{"key-path", rc.KeyPath, &c.KeyPath}, {"known-hosts-path", rc.KnownHostsPath, &c.KnownHostsPath}} {
		if f.in == "" {
			continue
		}
		p, err := expandPath(f.in)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.key, err)
		}
		*f.out = p
	}
	return c, nil
}

// checkSFTPConfig validates a sftp replica's keys (and URL) at config load.
// The caller puts the entry's line in front of the error.
func checkSFTPConfig(rc *ReplicaConfig, c *Config) error {
	if rc.URL != "" && rc.Host != "" {
		return errors.New("sftp replica has both url and host: keep one")
	}
	if rc.URL == "" && rc.Host == "" {
		return errors.New("sftp replica needs a url (sftp://USER@HOST[:PORT]/PATH) or a host")
	}
	client, err := buildSFTPClient(rc)
	if err != nil {
		return err
	}
	if !validHost(client.Host) {
		return fmt.Errorf("sftp host %q is not HOST or HOST:PORT", client.Host)
	}
	switch {
	case client.User == "":
		return errors.New("sftp replica has no user: write sftp://USER@HOST/PATH, or set user")
	case client.Password == "" && client.KeyPath == "":
		return fmt.Errorf("sftp replica for user %q has neither a password nor a key-path: set one of them", client.User)
	case client.HostKey != "" && client.KnownHostsPath != "":
		return errors.New("sftp replica has both host-key and known-hosts-path: keep one")
	}
	if client.HostKey != "" {
		if _, err := sftp.ParseHostKey(client.HostKey); err != nil {
			return err
		}
	}
	return nil
}

// validHost reports whether s is HOST, HOST:PORT, an IPv6 address or
// [IPv6]:PORT, with a port from 1 to 65535.
func validHost(s string) bool {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return s != "" && (!strings.Contains(s, ":") || net.ParseIP(s) != nil)
	}
	n, err := strconv.Atoi(p)
	return h != "" && err == nil && n >= 1 && n <= 65535
}

// newSFTPClient builds the sftp replica client from a normalized replica
// config; onOp, if not nil, counts its requests.
func newSFTPClient(rc *ReplicaConfig, onOp func(op string, bytes int64)) (litestream.ReplicaClient, error) {
	c, err := buildSFTPClient(rc)
	if err != nil {
		return nil, err
	}
	c.OnOp = onOp
	return c, nil
}

// sftpDest returns where a normalized sftp replica writes, for
// checkReplicaDests; false if that cannot be told. An absolute path is
// the same place for every user of the server; a relative one is in the
// user's login directory, so it is the user's own.
func sftpDest(rc *ReplicaConfig) (replicaDest, bool) {
	c, err := buildSFTPClient(rc)
	if err != nil || c.Host == "" {
		return replicaDest{}, false
	}
	addr := strings.ToLower(c.Addr())
	if path.IsAbs(c.Path) {
		root := path.Clean(c.Path)
		return replicaDest{store: "sftp " + addr, root: root, shown: "sftp://" + c.User + "@" + addr + root}, true
	}
	root := strings.TrimPrefix(path.Clean(c.Path), ".")
	shown := fmt.Sprintf("%q in the login directory of %s@%s", root, c.User, addr)
	if root == "" {
		shown = fmt.Sprintf("the login directory of %s@%s", c.User, addr)
	}
	return replicaDest{store: "sftp " + addr + " ~" + c.User, root: root, shown: shown}, true
}

// sftpLogAttrs returns the startup log's attributes of a sftp client
// (host, user, path, how it logs in and checks the host key), never the
// password.
func sftpLogAttrs(c litestream.ReplicaClient) []any {
	sc, ok := c.(*sftp.ReplicaClient)
	if !ok {
		return nil
	}
	var auth []string
	if sc.Password != "" {
		auth = append(auth, "password")
	}
	if sc.KeyPath != "" {
		auth = append(auth, "key")
	}
	attrs := []any{"host", sc.Addr(), "user", sc.User, "path", sc.Path, "auth", strings.Join(auth, "+")}
	if sc.KeyPath != "" {
		attrs = append(attrs, "key_path", sc.KeyPath)
	}
	switch {
	case sc.HostKey != "":
		attrs = append(attrs, "host_key", "pinned by host-key")
	case sc.KnownHostsPath != "":
		attrs = append(attrs, "host_key", "checked against "+sc.KnownHostsPath)
	default:
		attrs = append(attrs, "host_key", "not verified")
	}
	return attrs
}
