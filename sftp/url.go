package sftp

import (
	"fmt"
	"net/url"
	"strings"
)

// ParseURL builds a client from a replica URL:
// sftp://USER[:PASSWORD]@HOST[:PORT]/PATH. As in v0.3, PATH is the URL's
// path as written, so it is absolute ("/backups/db"); a URL without a
// path means the login directory. The password, if any, is decoded from
// the URL's escapes. Errors quote the URL without its password.
func ParseURL(s string) (*ReplicaClient, error) {
	u, err := url.Parse(s)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("sftp URL %q: %v", redact(s), err)
	}
	shown := redact(s)
	switch {
	case u.Scheme != "sftp":
		return nil, fmt.Errorf("sftp URL %q: scheme must be sftp://", shown)
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("sftp URL %q has no host: write sftp://USER[:PASSWORD]@HOST[:PORT]/PATH", shown)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("sftp URL %q: an sftp URL takes no ?query or #fragment: set host-key, key-path and the others in the config file", shown)
	}
	c := &ReplicaClient{Host: u.Host, Path: u.Path}
	if u.User != nil {
		c.User = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	return c, nil
}

// redact hides the password of a URL that does not parse.
func redact(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	at := -1
	for i := 0; i < len(rest) && rest[i] != '/'; i++ {
		if rest[i] == '@' {
			at = i
		}
	}
	if at < 0 {
		return s
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return s
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}
