package abs

import (
	"fmt"
	"net/url"
	"strings"
)

// ParseURL builds a client from a replica URL: abs://[ACCOUNT@]CONTAINER/PATH,
// as Litestream v0.3 reads it (the user part is the storage account, the
// host the container). A query parameter endpoint sets the service URL, for
// Azurite or a sovereign cloud. The URL never carries the key: a password
// in it is refused.
func ParseURL(s string) (*ReplicaClient, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("abs URL %q: %w", redact(s), err)
	}
	if u.Scheme != "abs" {
		return nil, fmt.Errorf("abs URL %q: scheme must be abs://", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("abs URL %q has no container: use abs://ACCOUNT@CONTAINER/PATH", u.Redacted())
	}
	c := &ReplicaClient{Bucket: u.Host, Path: strings.Trim(u.Path, "/")}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			return nil, fmt.Errorf("abs URL %q: the URL carries no account key: set account-key in the config, or %s", u.Redacted(), AccountKeyEnv)
		}
		c.AccountName = u.User.Username()
	}
	for k, v := range u.Query() {
		switch k {
		case "endpoint":
			c.Endpoint = v[0]
		default:
			return nil, fmt.Errorf("abs URL %q: unknown parameter %q (known: endpoint)", u.Redacted(), k)
		}
	}
	return c, nil
}

// redact hides the password of a URL that does not parse.
func redact(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	authority, tail, _ := strings.Cut(rest, "/")
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return s
	}
	user, _, hasPass := strings.Cut(authority[:at], ":")
	if !hasPass {
		return s
	}
	out := scheme + "://" + user + ":xxxxx" + authority[at:]
	if len(rest) > len(authority) {
		out += "/" + tail
	}
	return out
}
