package app

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tapwars/tapwars/handlers"
	"github.com/tapwars/tapwars/stream"
)

// Config is everything tapwars reads from flags and the environment. Each
// setting has a flag and an environment variable of the same name (the flag
// in lower case with dashes); a flag wins over the variable.
type Config struct {
	Addr             string        // ADDR: listen address
	DataDir          string        // DATA_DIR: embedded broker and store, generated secrets
	RedisURL         string        // REDIS_URL: external Redis; empty = embedded store
	KafkaBrokers     []string      // KAFKA_BROKERS: external Kafka, comma-separated; empty = embedded broker
	KafkaVersion     string        // KAFKA_VERSION: protocol version sarama speaks
	KafkaGroup       string        // KAFKA_GROUP: consumer group id
	KafkaPartitions  int           // KAFKA_PARTITIONS: partitions game-taps is created with when missing
	KafkaReplication int           // KAFKA_REPLICATION_FACTOR: replication factor of created topics; 0 = min(3, brokers)
	KafkaMinInsync   int           // KAFKA_MIN_INSYNC_REPLICAS: min.insync.replicas of created topics; 0 = replication factor - 1 (at least 1)
	KafkaRetention   time.Duration // KAFKA_RETENTION: retention of a created game-taps; 0 = forever
	KafkaCompression string        // KAFKA_COMPRESSION: codec of the producer's record batches

	// Secured Kafka and Redis; the Kafka names are the old game's.
	KafkaSSL           bool   // KAFKA_SSL: TLS to the brokers
	KafkaSSLCAPath     string // KAFKA_SSL_CA_PATH: CA bundle (PEM); empty = system roots
	KafkaSSLCertPath   string // KAFKA_SSL_CERT_PATH: client certificate for mutual TLS
	KafkaSSLKeyPath    string // KAFKA_SSL_KEY_PATH: its key
	KafkaSSLSkipVerify bool   // KAFKA_SSL_INSECURE_SKIP_VERIFY: development only
	KafkaSASLMechanism string // KAFKA_SASL_MECHANISM: plain | scram-sha-256 | scram-sha-512
	KafkaUsername      string // KAFKA_USERNAME
	KafkaPassword      string // KAFKA_PASSWORD (or KAFKA_PASSWORD_FILE)
	RedisCAPath        string // REDIS_TLS_CA_PATH: CA bundle for rediss://; empty = system roots

	EmbeddedRedis   string        // EMBEDDED_REDIS: auto | redis-server | memory
	SessionSecret   string        // SESSION_SECRET: HMAC key of tokens; empty = generated in DATA_DIR
	TapTimeout      time.Duration // TAP_TIMEOUT: how long a tap waits for Kafka before 503
	RoundLease      time.Duration // ROUND_LEASE: how long the view of the round is trusted without reaching Redis
	LogFormat       string        // LOG_FORMAT: text | json
	LogLevel        string        // LOG_LEVEL: debug | info | warn | error
	DebugAddr       string        // DEBUG_ADDR: pprof listener; empty = off
	MetricsAddr     string        // METRICS_ADDR: /metrics listener; empty = off
	PublicURL       string        // PUBLIC_URL: the address players use (QR code); empty = from each request
	CheckpointEvery time.Duration // CHECKPOINT_INTERVAL: how often the projection is checkpointed to Kafka; 0 = never

	AdminToken          string   // ADMIN_TOKEN: admin page token; empty = generated in DATA_DIR/admin.token
	TapRateLimit        float64  // TAP_RATE_LIMIT: taps per second per player; 0 = no limit
	JoinRateLimit       int      // JOIN_RATE_LIMIT: new players per client address per minute; 0 = no limit
	JoinsPerSecond      int      // JOINS_PER_SECOND: new players per second on an instance; 0 = no limit
	MaxConnections      int      // MAX_CONNECTIONS: live connections of an instance; 0 = no limit
	MaxConnectionsPerIP int      // MAX_CONNECTIONS_PER_IP: live connections per client address; 0 = no limit
	TrustedProxies      []string // TRUSTED_PROXIES: proxies whose X-Forwarded-For is believed (addresses or CIDRs)

	// The public listener's TCP connections (see handlers.LimitListener).
	MaxTCPConnections      int           // MAX_TCP_CONNECTIONS: open connections of the instance; 0 = the file limit's
	MaxTCPConnectionsPerIP int           // MAX_TCP_CONNECTIONS_PER_IP: open connections per client address; 0 = no limit
	HeaderTimeout          time.Duration // HTTP_HEADER_TIMEOUT: how long a request's headers may take to arrive
	IdleTimeout            time.Duration // HTTP_IDLE_TIMEOUT: how long a keep-alive connection may wait for its next request
}

// setting is one configurable value: its name (the environment variable),
// its help, and how to parse it.
type setting struct {
	env, help, def string
	set            func(string) error
}

// secretSettings can also be read from the file named by NAME_FILE
// (Kubernetes and Docker secrets), and their values are never repeated in
// an error.
var secretSettings = map[string]bool{"REDIS_URL": true, "KAFKA_PASSWORD": true, "SESSION_SECRET": true, "ADMIN_TOKEN": true}

// boolSetting parses true/false (also 1/0, yes/no, on/off).
func boolSetting(p *bool) func(string) error {
	return func(v string) error {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "1", "yes", "on":
			*p = true
		case "false", "0", "no", "off", "":
			*p = false
		default:
			return fmt.Errorf("must be true or false")
		}
		return nil
	}
}

func (c *Config) settings() []setting {
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	return []setting{
		{"ADDR", "listen address", ":8080", str(&c.Addr)},
		{"DATA_DIR", "directory of the embedded broker and store and of generated secrets", "./data", str(&c.DataDir)},
		{"REDIS_URL", "Redis URL: redis://[user:password@]host:6379/0, rediss:// for TLS, or Sentinel: redis://sentinel:26379?master_name=NAME&addr=sentinel2:26379; empty runs the embedded store", "", str(&c.RedisURL)},
		{"KAFKA_BROKERS", "Kafka bootstrap brokers, comma-separated; empty runs the embedded broker", "", func(v string) error {
			c.KafkaBrokers = nil
			for _, b := range strings.Split(v, ",") {
				if b = strings.TrimSpace(b); b != "" {
					c.KafkaBrokers = append(c.KafkaBrokers, b)
				}
			}
			return nil
		}},
		{"KAFKA_VERSION", "Kafka protocol version", "3.6.0", str(&c.KafkaVersion)},
		{"KAFKA_GROUP", "consumer group that applies taps", "tapwars-applier", str(&c.KafkaGroup)},
		{"KAFKA_PARTITIONS", "partitions game-taps is created with when it is missing (embedded or external Kafka)", "6", func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				return fmt.Errorf("must be a whole number from 1 to 1000")
			}
			c.KafkaPartitions = n
			return nil
		}},
		{"KAFKA_REPLICATION_FACTOR", "replication factor of the topics tapwars creates; 0 = min(3, brokers in the cluster)", "0", func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 32 {
				return fmt.Errorf("must be a whole number from 0 (automatic) to 32")
			}
			c.KafkaReplication = n
			return nil
		}},
		{"KAFKA_MIN_INSYNC_REPLICAS", "min.insync.replicas of the topics tapwars creates (with acks=all, a tap is acknowledged once on this many brokers); 0 = replication factor - 1, at least 1", "0", func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 32 {
				return fmt.Errorf("must be a whole number from 0 (automatic) to 32")
			}
			c.KafkaMinInsync = n
			return nil
		}},
		{"KAFKA_RETENTION", "how long a game-taps that tapwars creates keeps records (retention.ms), so how old a Redis may be and still be rebuilt from the log; 0 = forever", "168h", func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || (d > 0 && d < time.Minute) {
				return fmt.Errorf("must be a duration of at least 1m such as 168h, or 0 to keep records forever")
			}
			c.KafkaRetention = d
			return nil
		}},
		{"KAFKA_COMPRESSION", "compression of the records tapwars writes: none, lz4, zstd, snappy or gzip", stream.DefaultCompression, func(v string) error {
			if _, err := stream.ParseCompression(v); err != nil {
				return fmt.Errorf("must be none, lz4, zstd, snappy or gzip")
			}
			c.KafkaCompression = v
			return nil
		}},
		// Secured Kafka and Redis.
		{"KAFKA_SSL", "connect to Kafka with TLS", "false", boolSetting(&c.KafkaSSL)},
		{"KAFKA_SSL_CA_PATH", "CA certificates (PEM) that sign the brokers' certificates; empty = the system roots", "", str(&c.KafkaSSLCAPath)},
		{"KAFKA_SSL_CERT_PATH", "client certificate (PEM) for mutual TLS", "", str(&c.KafkaSSLCertPath)},
		{"KAFKA_SSL_KEY_PATH", "private key (PEM) of KAFKA_SSL_CERT_PATH", "", str(&c.KafkaSSLKeyPath)},
		{"KAFKA_SSL_INSECURE_SKIP_VERIFY", "accept any broker certificate (development only; logged as a warning)", "false", boolSetting(&c.KafkaSSLSkipVerify)},
		{"KAFKA_SASL_MECHANISM", "SASL mechanism: plain, scram-sha-256 or scram-sha-512; empty = no SASL", "", str(&c.KafkaSASLMechanism)},
		{"KAFKA_USERNAME", "SASL user name", "", str(&c.KafkaUsername)},
		{"KAFKA_PASSWORD", "SASL password", "", str(&c.KafkaPassword)},
		{"REDIS_TLS_CA_PATH", "CA certificates (PEM) that sign Redis' certificate for rediss:// URLs; empty = the system roots", "", str(&c.RedisCAPath)},
		{"EMBEDDED_REDIS", "embedded store: auto (redis-server child when on PATH, else in-process), redis-server or memory", "auto", func(v string) error {
			switch v {
			case "auto", "redis-server", "memory":
				c.EmbeddedRedis = v
				return nil
			}
			return fmt.Errorf("must be auto, redis-server or memory")
		}},
		{"SESSION_SECRET", "HMAC key for player tokens (all instances need the same); empty = generated and kept in DATA_DIR", "", str(&c.SessionSecret)},
		{"TAP_TIMEOUT", "how long a tap waits for Kafka's acknowledgement before 503", "3s", func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("must be a positive duration such as 3s")
			}
			c.TapTimeout = d
			return nil
		}},
		{"ROUND_LEASE", "how long an instance stays registered for round announcements after it last reached Redis; it judges taps by its view of the round until a quarter of this before, then answers 503, and an announcement waits at most this long for an instance that went silent", "6s", func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 400*time.Millisecond || d > time.Minute {
				return fmt.Errorf("must be a duration from 400ms to 1m, such as 6s")
			}
			c.RoundLease = d
			return nil
		}},
		{"CHECKPOINT_INTERVAL", "how often a checkpoint of the state goes to the game-checkpoints topic, so a rebuild replays only the log after it; 0 = never", "1m", func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return fmt.Errorf("must be a duration such as 1m, or 0 for no checkpoints")
			}
			c.CheckpointEvery = d
			return nil
		}},
		{"LOG_FORMAT", "log format: text or json", "text", func(v string) error {
			if v != "text" && v != "json" {
				return fmt.Errorf("must be text or json")
			}
			c.LogFormat = v
			return nil
		}},
		{"LOG_LEVEL", "log level: debug, info, warn or error", "info", str(&c.LogLevel)},
		{"PUBLIC_URL", "the address players use, e.g. https://tapwars.example (the presenter screen's QR code); empty = the request's scheme and host", "", func(v string) error {
			if v == "" {
				c.PublicURL = ""
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
				return fmt.Errorf("must be an http:// or https:// address without query, e.g. https://tapwars.example")
			}
			c.PublicURL = strings.TrimRight(u.String(), "/")
			return nil
		}},
		{"DEBUG_ADDR", "address of a Go pprof listener (/debug/pprof/) for profiling; keep it private (e.g. 127.0.0.1:6060); empty = off", "", str(&c.DebugAddr)},
		{"METRICS_ADDR", "address of the Prometheus /metrics listener, apart from the game's; loopback by default so a laptop at a venue never shows it to the room (Kubernetes: :9090); empty = off", "127.0.0.1:9090", str(&c.MetricsAddr)},
		{"ADMIN_TOKEN", "token of the admin page /admin (at least 32 characters, e.g. openssl rand -hex 32); empty = generated and kept in DATA_DIR/admin.token", "", func(v string) error {
			if v != "" && len(v) < handlers.MinAdminToken {
				return fmt.Errorf("must be at least %d characters, so that it cannot be guessed: generate one with openssl rand -hex 32", handlers.MinAdminToken)
			}
			c.AdminToken = v
			return nil
		}},
		{"TAP_RATE_LIMIT", "taps per second per player (bursts up to max(50, 2 s worth)); 0 = no limit", "20", func(v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1e6 {
				return fmt.Errorf("must be a number of taps per second, 0 for no limit")
			}
			c.TapRateLimit = f
			return nil
		}},
		{"JOIN_RATE_LIMIT", "new players per client address per minute (a room behind one NAT address shares it); 0 = no limit", "600", intSetting(&c.JoinRateLimit)},
		{"JOINS_PER_SECOND", "new players per second on this instance, from all addresses (bursts: 10 s worth; one address gets at most half); 0 = no limit", "100", intSetting(&c.JoinsPerSecond)},
		{"MAX_CONNECTIONS", "live connections (WebSocket + SSE) per instance; 0 = no limit", "10000", intSetting(&c.MaxConnections)},
		{"MAX_CONNECTIONS_PER_IP", "live connections per client address (IPv6: per /64; a room behind one NAT address shares it); 0 = no limit", "1000", intSetting(&c.MaxConnectionsPerIP)},
		{"TRUSTED_PROXIES", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client; empty = the TCP peer is the client", "", func(v string) error {
			c.TrustedProxies = nil
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					c.TrustedProxies = append(c.TrustedProxies, p)
				}
			}
			_, err := handlers.ParseProxies(c.TrustedProxies)
			return err
		}},
		{"MAX_TCP_CONNECTIONS", "open TCP connections of the game's listener (requests, idle keep-alive and live streams), kept under the process's file limit minus 1,000; 0 = that limit", "15000", intSetting(&c.MaxTCPConnections)},
		{"MAX_TCP_CONNECTIONS_PER_IP", "open TCP connections per client address (IPv6: per /64; a room behind one NAT address shares it; trusted proxies are exempt); 0 = no limit", "3000", intSetting(&c.MaxTCPConnectionsPerIP)},
		{"HTTP_HEADER_TIMEOUT", "how long a request's headers may take to arrive (a phone on a crowded Wi-Fi retransmits)", "10s", positiveDuration(&c.HeaderTimeout)},
		{"HTTP_IDLE_TIMEOUT", "how long a keep-alive connection may wait for its next request before it is closed", "30s", positiveDuration(&c.IdleTimeout)},
	}
}

// positiveDuration parses a duration > 0.
func positiveDuration(p *time.Duration) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("must be a positive duration such as 10s")
		}
		*p = d
		return nil
	}
}

// intSetting parses a whole number >= 0.
func intSetting(p *int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("must be a whole number, 0 for no limit")
		}
		*p = n
		return nil
	}
}

// FlagName is the flag of an environment variable: ADDR -> addr, DATA_DIR -> data-dir.
func FlagName(env string) string { return strings.ReplaceAll(strings.ToLower(env), "_", "-") }

// SettingNames lists every environment variable tapwars reads, the
// NAME_FILE variants of the secret settings included.
func SettingNames() []string {
	var c Config
	var names []string
	for _, s := range c.settings() {
		names = append(names, s.env)
		if secretSettings[s.env] {
			names = append(names, s.env+"_FILE")
		}
	}
	return names
}

// KafkaTopics is how tapwars creates its topics when they are missing.
func (c *Config) KafkaTopics() stream.Topics {
	return stream.Topics{Partitions: int32(c.KafkaPartitions), ReplicationFactor: int16(c.KafkaReplication),
		MinInsyncReplicas: c.KafkaMinInsync, Retention: c.KafkaRetention}
}

// KafkaSecurity is the TLS and SASL part of the configuration.
func (c *Config) KafkaSecurity() stream.Security {
	return stream.Security{
		TLS: c.KafkaSSL, CAFile: c.KafkaSSLCAPath, CertFile: c.KafkaSSLCertPath, KeyFile: c.KafkaSSLKeyPath,
		SkipVerify: c.KafkaSSLSkipVerify, SASLMechanism: c.KafkaSASLMechanism,
		Username: c.KafkaUsername, Password: c.KafkaPassword,
	}
}

// Parse fills c from defaults, then getenv, then args (flags). A secret
// setting NAME may come from the file named by NAME_FILE (or the flag
// -name-file) instead, with one trailing newline removed.
func (c *Config) Parse(args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("tapwars", flag.ContinueOnError)
	fs.SetOutput(out)
	ss := c.settings()
	// Secret flags are applied after parsing, so that the flag package
	// never prints their value in an error.
	type pending struct {
		s               setting
		val, file       string
		valSet, fileSet bool
	}
	var secrets []*pending
	for _, s := range ss {
		v := s.def
		if e := getenv(s.env); e != "" {
			v = e
		}
		if !secretSettings[s.env] {
			if err := s.set(v); err != nil {
				return fmt.Errorf("%s=%q: %w", s.env, v, err)
			}
			fs.Func(FlagName(s.env), s.help+" (env "+s.env+", default "+strconv.Quote(s.def)+")", s.set)
			continue
		}
		p := &pending{s: s, val: v, file: getenv(s.env + "_FILE")}
		if p.file != "" && getenv(s.env) != "" {
			return fmt.Errorf("both %s and %s_FILE are set: set only one", s.env, s.env)
		}
		secrets = append(secrets, p)
		fs.Func(FlagName(s.env), s.help+" (env "+s.env+", a secret: or a file named by "+s.env+"_FILE)", func(v string) error {
			p.val, p.valSet = v, true
			return nil
		})
		fs.Func(FlagName(s.env+"_FILE"), "file holding "+s.env+", one trailing newline removed (env "+s.env+"_FILE, default none)", func(v string) error {
			p.file, p.fileSet = v, true
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, p := range secrets {
		name := p.s.env
		switch {
		case p.valSet && p.fileSet:
			return fmt.Errorf("both -%s and -%s are given: give only one", FlagName(name), FlagName(name+"_FILE"))
		case p.valSet:
			p.file = ""
		case p.file != "":
			b, err := os.ReadFile(p.file)
			if err != nil {
				return fmt.Errorf("%s_FILE: %w", name, err)
			}
			p.val = trimOneNewline(string(b))
			name += "_FILE " + p.file
		}
		if err := p.s.set(p.val); err != nil {
			return fmt.Errorf("%s: %w", name, err) // never the value: it is a secret
		}
	}
	return nil
}

// trimOneNewline removes one trailing "\n" or "\r\n", as files written by
// editors and `echo` end; any other whitespace is part of the secret.
func trimOneNewline(s string) string {
	s, _ = strings.CutSuffix(s, "\n")
	s, _ = strings.CutSuffix(s, "\r")
	return s
}
