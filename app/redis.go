package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/stream"
)

// redisConn is a parsed REDIS_URL: the client and where it connects, for
// messages (never with the password).
type redisConn struct {
	client redis.UniversalClient
	addrs  []string // the server, or the Sentinels
	shown  string   // the URL with its passwords hidden
}

// newRedisConn builds the client of REDIS_URL; it connects on first use:
//   - redis://[user:password@]host:port/db, rediss:// for TLS;
//   - go-redis' Sentinel form, recognised by master_name:
//     redis[s]://[sentinel-user:sentinel-password@]sentinel-a:26379/db?master_name=NAME&addr=sentinel-b:26379&username=USER&password=PASSWORD
//     (the URL's user and password are the Sentinels'; the query's are the
//     primary's and replicas').
//
// caPath (REDIS_TLS_CA_PATH) is the CA of the server certificates of a
// rediss:// URL; empty uses the system roots.
func newRedisConn(rawURL, caPath string) (*redisConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the whole URL, password included: keep only its reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, game.Errorf(game.EINVALID, "REDIS_URL is not a valid URL: %v", err)
	}
	rc := &redisConn{shown: redactURL(u)}
	var ca *x509.CertPool
	if caPath != "" {
		if u.Scheme != "rediss" {
			return nil, game.Errorf(game.EINVALID, "REDIS_TLS_CA_PATH is set but REDIS_URL is not a rediss:// (TLS) URL")
		}
		if ca, err = stream.ReadCAFile(caPath); err != nil {
			return nil, game.Errorf(game.EINVALID, "REDIS_TLS_CA_PATH: %v", err)
		}
	}
	if u.Query().Has("master_name") {
		o, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, game.Errorf(game.EINVALID, "REDIS_URL (Sentinel form %s): %v", rc.shown, err)
		}
		tuneRedis(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolSize, &o.DialerRetries)
		setRoots(o.TLSConfig, ca)
		if o.TLSConfig != nil {
			// go-redis names the first Sentinel as the TLS server of every
			// connection; empty, each is checked against its own address
			// (tls.DialWithDialer fills it in).
			o.TLSConfig.ServerName = ""
		}
		rc.addrs = o.SentinelAddrs
		rc.client = redis.NewFailoverClient(o)
		return rc, nil
	}
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, game.Errorf(game.EINVALID, "REDIS_URL %s: %v", rc.shown, err)
	}
	tuneRedis(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolSize, &o.DialerRetries)
	setRoots(o.TLSConfig, ca)
	rc.addrs = []string{o.Addr}
	rc.client = redis.NewClient(o)
	return rc, nil
}

// tuneRedis sets the timeouts and pool of a client, single or failover.
func tuneRedis(dial, read, write *time.Duration, poolSize, dialerRetries *int) {
	*dial = 2 * time.Second
	*read = 3 * time.Second
	*write = 3 * time.Second
	*poolSize = max(*poolSize, 64)
	// Fail fast when Redis is down (503s and the pages' "reconnecting" within
	// a fraction of a second): go-redis would otherwise dial 5 times per
	// attempt, ~1.7 s per failed command; commands still retry 3 times.
	*dialerRetries = 1
}

func setRoots(cfg *tls.Config, ca *x509.CertPool) {
	if cfg != nil && ca != nil {
		cfg.RootCAs = ca
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// redactURL is u with every password replaced by xxxxx: the user info's
// and the Sentinel form's password query parameter.
func redactURL(u *url.URL) string {
	c := *u
	if q := c.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		c.RawQuery = q.Encode()
	}
	return c.Redacted()
}

// explain turns a failed connection or command into an error that names
// the likely cause and what to change in REDIS_URL; nil stays nil.
func (rc *redisConn) explain(err error) error {
	if err == nil {
		return nil
	}
	var (
		msg    = err.Error()
		certE  *tls.CertificateVerificationError
		unkCA  x509.UnknownAuthorityError
		hostE  x509.HostnameError
		recE   tls.RecordHeaderError
		cause  string
		isTLS  = strings.HasPrefix(rc.shown, "rediss:")
		target = "Redis at " + strings.Join(rc.addrs, ",")
	)
	switch {
	case strings.Contains(msg, "WRONGPASS"):
		cause = "Redis refused the user name or password in REDIS_URL"
	case strings.Contains(msg, "NOAUTH"):
		cause = "Redis needs a password: put user:password@ (an ACL user) or :password@ into REDIS_URL"
	case errors.As(err, &certE) || errors.As(err, &unkCA) || errors.As(err, &hostE):
		cause = "Redis' TLS certificate is not trusted: set REDIS_TLS_CA_PATH to the CA that signed it"
	case errors.As(err, &recE):
		cause = "Redis does not speak TLS on this port: use redis:// instead of rediss://"
	case strings.Contains(msg, "all sentinels specified in configuration are unreachable"):
		cause = "no Sentinel answered for the master_name: check the Sentinel addresses and master_name in REDIS_URL"
	case errors.Is(err, syscall.ECONNREFUSED):
		cause = "nothing listens there: check the host and port in REDIS_URL and that Redis runs"
	case !isTLS && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		cause = "Redis closed the connection: it may require TLS (use a rediss:// URL)"
	case isTimeout(err) && isTLS:
		// A plaintext server waits for a line end that a TLS handshake never sends.
		cause = "Redis did not answer in time: if it does not speak TLS on this port, use redis:// instead of rediss://"
	case isTimeout(err):
		cause = "Redis did not answer in time"
	default:
		cause = "Redis did not answer as expected"
	}
	return &redisError{cause: cause, target: target, err: err}
}

// redisError is a Redis failure explained: the cause alone for people
// (/readyz), with the address and Redis' own words for the log and start.
type redisError struct {
	cause, target string
	err           error
}

func (e *redisError) Error() string {
	return fmt.Sprintf("could not use %s: %s (%v)", e.target, e.cause, e.err)
}

func (e *redisError) Unwrap() error { return e.err }

// Reason is the cause in a few words, without addresses or secrets.
func (e *redisError) Reason() string { return e.cause }
