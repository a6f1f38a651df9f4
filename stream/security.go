package stream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"

	"github.com/tapwars/tapwars/game"
)

// Security is how tapwars reaches a secured Kafka: TLS (KAFKA_SSL and its
// files) and SASL (KAFKA_SASL_MECHANISM, KAFKA_USERNAME, KAFKA_PASSWORD),
// the old game's settings. The zero value is plaintext without
// authentication.
type Security struct {
	TLS           bool   // KAFKA_SSL
	CAFile        string // KAFKA_SSL_CA_PATH: PEM CA bundle; empty = the system roots
	CertFile      string // KAFKA_SSL_CERT_PATH: client certificate (mutual TLS)
	KeyFile       string // KAFKA_SSL_KEY_PATH: its private key
	SkipVerify    bool   // KAFKA_SSL_INSECURE_SKIP_VERIFY: development only
	SASLMechanism string // KAFKA_SASL_MECHANISM: "", plain, scram-sha-256, scram-sha-512
	Username      string // KAFKA_USERNAME
	Password      string // KAFKA_PASSWORD
}

// SASL mechanisms, as the old game (KafkaJS) names them.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// Mechanism is the SASL mechanism in the old game's lower-case spelling
// ("SCRAM-SHA-512" is accepted too), or "" without SASL.
func (s Security) Mechanism() string { return strings.ToLower(strings.TrimSpace(s.SASLMechanism)) }

// Validate checks that the settings fit together, naming the settings in
// its message.
func (s Security) Validate() error {
	switch s.Mechanism() {
	case "":
		if s.Username != "" || s.Password != "" {
			return game.Errorf(game.EINVALID, "KAFKA_USERNAME/KAFKA_PASSWORD are set but KAFKA_SASL_MECHANISM is not: set it to plain, scram-sha-256 or scram-sha-512")
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if s.Username == "" || s.Password == "" {
			return game.Errorf(game.EINVALID, "KAFKA_SASL_MECHANISM=%s needs KAFKA_USERNAME and KAFKA_PASSWORD (or KAFKA_PASSWORD_FILE)", s.Mechanism())
		}
	default:
		return game.Errorf(game.EINVALID, "KAFKA_SASL_MECHANISM=%q: must be plain, scram-sha-256 or scram-sha-512", s.SASLMechanism)
	}
	if !s.TLS {
		for _, f := range []struct{ name, val string }{
			{"KAFKA_SSL_CA_PATH", s.CAFile}, {"KAFKA_SSL_CERT_PATH", s.CertFile}, {"KAFKA_SSL_KEY_PATH", s.KeyFile},
		} {
			if f.val != "" {
				return game.Errorf(game.EINVALID, "%s is set but KAFKA_SSL is not true: set KAFKA_SSL=true to connect with TLS", f.name)
			}
		}
		if s.SkipVerify {
			return game.Errorf(game.EINVALID, "KAFKA_SSL_INSECURE_SKIP_VERIFY is set but KAFKA_SSL is not true")
		}
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		return game.Errorf(game.EINVALID, "mutual TLS needs both KAFKA_SSL_CERT_PATH and KAFKA_SSL_KEY_PATH")
	}
	return nil
}

// Enabled reports whether any TLS or SASL setting is in use.
func (s Security) Enabled() bool { return s.TLS || s.Mechanism() != "" }

// tlsConfig reads the CA and client certificate files.
func (s Security) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.SkipVerify} //nolint:gosec // SkipVerify is the operator's explicit, logged choice
	if s.CAFile != "" {
		pool, err := ReadCAFile(s.CAFile)
		if err != nil {
			return nil, game.Errorf(game.EINVALID, "KAFKA_SSL_CA_PATH: %v", err)
		}
		cfg.RootCAs = pool
	}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, game.Errorf(game.EINVALID, "KAFKA_SSL_CERT_PATH/KAFKA_SSL_KEY_PATH: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// ReadCAFile reads a PEM bundle of CA certificates.
func ReadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// apply sets sarama's Net.TLS and Net.SASL.
func (s Security) apply(cfg *sarama.Config) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if s.TLS {
		tc, err := s.tlsConfig()
		if err != nil {
			return err
		}
		// sarama would wrap its connection in TLS and shake hands lazily,
		// on the first request, under the 10 s read timeout, so TLS at a
		// plaintext listener would hang there. The dialer shakes hands at
		// once, within the dial timeout, and says when it fails.
		cfg.Net.Proxy.Enable = true
		cfg.Net.Proxy.Dialer = &tlsDialer{
			dialer: net.Dialer{Timeout: cfg.Net.DialTimeout, KeepAlive: cfg.Net.KeepAlive},
			config: tc,
		}
	}
	switch s.Mechanism() {
	case "":
		return nil
	case SASLPlain:
		cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case SASLScramSHA256:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA256} }
	case SASLScramSHA512:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA512} }
	}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Handshake = true
	cfg.Net.SASL.User = s.Username
	cfg.Net.SASL.Password = s.Password
	return nil
}

// tlsDialer dials a broker and completes the TLS handshake within the
// dial timeout. sarama uses it as its "proxy" dialer.
type tlsDialer struct {
	dialer net.Dialer
	config *tls.Config
}

func (d *tlsDialer) Dial(network, addr string) (net.Conn, error) {
	conn, err := d.dialer.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	cfg := d.config
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		cfg = cfg.Clone()
		host, _, _ := net.SplitHostPort(addr)
		cfg.ServerName = host
	}
	tc := tls.Client(conn, cfg)
	_ = conn.SetDeadline(time.Now().Add(d.dialer.Timeout))
	if err := tc.Handshake(); err != nil {
		_ = conn.Close()
		return nil, &handshakeError{err: err}
	}
	_ = conn.SetDeadline(time.Time{})
	return tc, nil
}

// handshakeError is a TLS handshake with a broker that failed.
type handshakeError struct{ err error }

func (e *handshakeError) Error() string { return "TLS handshake: " + e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// scramClient adapts xdg-go/scram to sarama's SCRAMClient.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	cl, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = cl.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }
func (c *scramClient) Done() bool                            { return c.conv.Done() }

// explain turns a failure to reach the brokers into an error naming its
// likely cause and the settings to check. sarama often reports only "client
// has run out of available brokers to talk to: EOF" (a broker drops the
// connection on a wrong password, or on a plaintext request to a TLS
// listener), so the causes are guessed from the error and the settings.
// The password never appears in it.
func (s Security) explain(brokers []string, err error) error {
	if err == nil {
		return nil
	}
	var (
		cause  string
		certE  *tls.CertificateVerificationError
		unkCA  x509.UnknownAuthorityError
		hostE  x509.HostnameError
		recE   tls.RecordHeaderError
		kerr   sarama.KError
		hsE    *handshakeError
		opE    *net.OpError
		dnsE   *net.DNSError
		verify = errors.As(err, &certE) || errors.As(err, &unkCA) || errors.As(err, &hostE)
	)
	switch {
	case verify:
		cause = "the broker's TLS certificate is not trusted (" + certProblem(err) + "): set KAFKA_SSL_CA_PATH to the CA that signed it"
	case errors.As(err, &recE):
		cause = "the broker does not speak TLS on this port: unset KAFKA_SSL or use the broker's TLS listener"
	case errors.As(err, &opE) && opE.Op == "remote error": // a TLS alert from the broker
		cause = "the broker refused the TLS connection (" + opE.Err.Error() + "): it may require a client certificate signed by a CA it trusts (KAFKA_SSL_CERT_PATH/KAFKA_SSL_KEY_PATH)"
	case errors.As(err, &hsE) && isTimeout(err):
		cause = "the broker did not answer the TLS handshake: it may not speak TLS on this port (unset KAFKA_SSL or use the broker's TLS listener)"
	case errors.As(err, &hsE):
		cause = "the TLS handshake failed: the broker may not speak TLS on this port (unset KAFKA_SSL), or may require a client certificate (KAFKA_SSL_CERT_PATH/KAFKA_SSL_KEY_PATH)"
	case errors.Is(err, sarama.ErrSASLAuthenticationFailed) || (errors.As(err, &kerr) && kerr == sarama.ErrSASLAuthenticationFailed):
		cause = "the broker refused the credentials: check KAFKA_USERNAME, KAFKA_PASSWORD and KAFKA_SASL_MECHANISM"
	case errors.Is(err, sarama.ErrUnsupportedSASLMechanism):
		cause = "the broker does not offer KAFKA_SASL_MECHANISM=" + s.Mechanism() + ": use one of its listener's mechanisms"
	case errors.As(err, &dnsE):
		cause = "a broker's host name does not resolve: check KAFKA_BROKERS"
	case errors.Is(err, syscall.ECONNREFUSED):
		cause = "nothing listens at the broker address: check KAFKA_BROKERS and that Kafka runs"
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "EOF"):
		cause = "the broker closed the connection: " + s.dropCauses()
	default:
		cause = "no broker answered: check KAFKA_BROKERS and that Kafka runs"
	}
	return &ConnectError{Brokers: brokers, Cause: cause, Err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// dropCauses lists what makes a broker hang up on this configuration.
func (s Security) dropCauses() string {
	var c []string
	if s.Mechanism() != "" {
		c = append(c, "wrong KAFKA_USERNAME/KAFKA_PASSWORD or a KAFKA_SASL_MECHANISM the listener does not offer")
	} else {
		c = append(c, "the listener may require SASL (set KAFKA_SASL_MECHANISM, KAFKA_USERNAME, KAFKA_PASSWORD)")
	}
	// With TLS the handshake succeeded (tlsDialer shakes hands at connect
	// time and reports its failures apart), so TLS is not the cause.
	if !s.TLS {
		c = append(c, "the listener may require TLS (set KAFKA_SSL=true)")
	}
	return strings.Join(c, "; or ")
}

// certProblem is the short reason a certificate was refused.
func certProblem(err error) string {
	var unkCA x509.UnknownAuthorityError
	var hostE x509.HostnameError
	var invE x509.CertificateInvalidError
	switch {
	case errors.As(err, &unkCA):
		return "signed by an unknown authority"
	case errors.As(err, &hostE):
		return "issued for another host name"
	case errors.As(err, &invE):
		return "invalid: " + invE.Error()
	}
	return "verification failed"
}

// ConnectError is a failure to reach Kafka with the likely cause, for the
// start-up error and /readyz.
type ConnectError struct {
	Brokers []string
	Cause   string
	Err     error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("could not connect to Kafka at %s: %s (%v)", strings.Join(e.Brokers, ","), e.Cause, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// Reason is the cause in a few words, without addresses or secrets.
func (e *ConnectError) Reason() string { return e.Cause }
