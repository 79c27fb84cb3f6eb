package sftp

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeyError is a server whose host key is not the one pinned by
// host-key or known-hosts-path. Its text says so, with the fingerprint
// the server offered.
type hostKeyError struct{ msg string }

func (e *hostKeyError) Error() string { return e.msg }

// hostKeyCheck is how a dial verifies the server's key.
type hostKeyCheck struct {
	callback   ssh.HostKeyCallback
	algorithms []string // host key algorithms to ask for; nil for the defaults
	known      bool     // callback is from known_hosts
}

// retryAlgorithms returns the algorithms of the keys known_hosts holds
// for the host, when the dial failed only because the server offered a
// key of another type first; nil otherwise.
func (h hostKeyCheck) retryAlgorithms(err error) []string {
	var he *hostKeyError
	var ke *knownhosts.KeyError
	if !h.known || h.algorithms != nil || !errors.As(err, &he) || !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	var wk *wrongKnownKey
	var out []string
	for _, k := range ke.Want {
		if errors.As(err, &wk) && k.Key.Type() == wk.offered {
			return nil // a key of that type is known, and it is another
		}
		out = append(out, algorithmsFor(k.Key.Type())...)
	}
	return out
}

// hostKeyCheck builds the host key verification: host-key, else
// known-hosts-path, else none, with a warning logged once per client.
func (c *ReplicaClient) hostKeyCheck() (hostKeyCheck, error) {
	addr := c.Addr()
	switch {
	case c.HostKey != "":
		want, err := ParseHostKey(c.HostKey)
		if err != nil {
			return hostKeyCheck{}, &configError{err.Error()}
		}
		cb := func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if bytes.Equal(key.Marshal(), want.Marshal()) {
				return nil
			}
			return &hostKeyError{fmt.Sprintf("the host key of the SFTP server %s does not match host-key: the server offered %s %s, host-key is %s %s; check that this is the right server, then update host-key",
				addr, key.Type(), ssh.FingerprintSHA256(key), want.Type(), ssh.FingerprintSHA256(want))}
		}
		return hostKeyCheck{callback: cb, algorithms: algorithmsFor(want.Type())}, nil
	case c.KnownHostsPath != "":
		kh, err := knownhosts.New(c.KnownHostsPath)
		if err != nil {
			return hostKeyCheck{}, &configError{fmt.Sprintf("cannot read known-hosts-path %s: %v", c.KnownHostsPath, unwrapPathError(err))}
		}
		cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			err := kh(hostname, remote, key)
			var ke *knownhosts.KeyError
			var re *knownhosts.RevokedError
			switch {
			case err == nil:
				return nil
			case errors.As(err, &re):
				return &hostKeyError{fmt.Sprintf("the SFTP server %s offered host key %s %s, which known-hosts-path %s marks as revoked", addr, key.Type(), ssh.FingerprintSHA256(key), c.KnownHostsPath)}
			case errors.As(err, &ke) && len(ke.Want) == 0:
				return &hostKeyError{fmt.Sprintf("the SFTP server %s is not in known-hosts-path %s (it offered host key %s %s): add its key, for example with ssh-keyscan -p %s %s >> %s",
					addr, c.KnownHostsPath, key.Type(), ssh.FingerprintSHA256(key), port(addr), host(addr), c.KnownHostsPath)}
			case errors.As(err, &ke):
				return &wrongKnownKey{hostKeyError{fmt.Sprintf("the host key of the SFTP server %s does not match known-hosts-path %s: the server offered %s %s, the file holds %s for it; check that this is the right server, then update the file",
					addr, c.KnownHostsPath, key.Type(), ssh.FingerprintSHA256(key), knownKeys(ke.Want))}, ke, key.Type()}
			default:
				return &hostKeyError{fmt.Sprintf("check the host key of the SFTP server %s against known-hosts-path %s: %v", addr, c.KnownHostsPath, err)}
			}
		}
		return hostKeyCheck{callback: cb, known: true}, nil
	default:
		c.warnOnce.Do(func() {
			logger := c.Logger
			if logger == nil {
				logger = slog.Default()
			}
			logger.Warn("the SFTP server's host key is not verified, as with litestream v0.3: any server answering at this address is trusted; pin its key with host-key (the server's public key line, e.g. from ssh-keyscan) or known-hosts-path",
				"host", addr)
		})
		return hostKeyCheck{callback: ssh.InsecureIgnoreHostKey()}, nil //nolint:gosec // v0.3's behaviour, warned about
	}
}

// wrongKnownKey is a hostKeyError that keeps the known_hosts error, so
// that a dial can ask for the key types the file holds.
type wrongKnownKey struct {
	hostKeyError
	ke      *knownhosts.KeyError
	offered string // the type of the key the server offered
}

func (e *wrongKnownKey) Unwrap() []error { return []error{&e.hostKeyError, e.ke} }

func knownKeys(keys []knownhosts.KnownKey) string {
	var s []string
	for _, k := range keys {
		s = append(s, fmt.Sprintf("%s %s (line %d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Line))
	}
	return strings.Join(s, ", ")
}

func host(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func port(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// ParseHostKey parses the host-key setting: a public key line as in
// authorized_keys ("ssh-ed25519 AAAA... comment") or known_hosts
// ("HOST ssh-ed25519 AAAA...").
func ParseHostKey(s string) (ssh.PublicKey, error) {
	line := []byte(strings.TrimSpace(s))
	if key, _, _, _, err := ssh.ParseAuthorizedKey(line); err == nil {
		return key, nil
	}
	if _, _, key, _, _, err := ssh.ParseKnownHosts(line); err == nil {
		return key, nil
	}
	return nil, fmt.Errorf("host-key %q is not a public key line: give the server's key as ssh-keyscan prints it, such as \"ssh-ed25519 AAAA...\"", shorten(s))
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// algorithmsFor returns the host key algorithms that yield a key of type t.
func algorithmsFor(t string) []string {
	switch t {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	case ssh.CertAlgoRSAv01:
		return []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01, ssh.CertAlgoRSAv01}
	default:
		return []string{t}
	}
}
