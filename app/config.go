package app

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tapwars/tapwars/handlers"
)

// Config is everything tapwars reads from flags and the environment. Each
// setting has a flag and an environment variable of the same name (the flag
// in lower case with dashes); a flag wins over the variable.
type Config struct {
	Addr            string        // ADDR: listen address
	DataDir         string        // DATA_DIR: embedded broker and store, generated secrets
	RedisURL        string        // REDIS_URL: external Redis; empty = embedded store
	KafkaBrokers    []string      // KAFKA_BROKERS: external Kafka, comma-separated; empty = embedded broker
	KafkaVersion    string        // KAFKA_VERSION: protocol version sarama speaks
	KafkaGroup      string        // KAFKA_GROUP: consumer group id
	KafkaPartitions int           // KAFKA_PARTITIONS: partitions of game-taps in the embedded broker
	EmbeddedRedis   string        // EMBEDDED_REDIS: auto | redis-server | memory
	SessionSecret   string        // SESSION_SECRET: HMAC key of tokens; empty = generated in DATA_DIR
	TapTimeout      time.Duration // TAP_TIMEOUT: how long a tap waits for Kafka before 503
	LogFormat       string        // LOG_FORMAT: text | json
	LogLevel        string        // LOG_LEVEL: debug | info | warn | error
	DebugAddr       string        // DEBUG_ADDR: pprof listener; empty = off
	CheckpointEvery time.Duration // CHECKPOINT_INTERVAL: how often the projection is checkpointed to Kafka; 0 = never

	AdminToken          string   // ADMIN_TOKEN: admin page token; empty = generated in DATA_DIR/admin.token
	TapRateLimit        float64  // TAP_RATE_LIMIT: taps per second per player; 0 = no limit
	JoinRateLimit       int      // JOIN_RATE_LIMIT: new players per client address per minute; 0 = no limit
	MaxConnections      int      // MAX_CONNECTIONS: live connections of an instance; 0 = no limit
	MaxConnectionsPerIP int      // MAX_CONNECTIONS_PER_IP: live connections per client address; 0 = no limit
	TrustedProxies      []string // TRUSTED_PROXIES: proxies whose X-Forwarded-For is believed (addresses or CIDRs)
}

// setting is one configurable value: its name (the environment variable),
// its help, and how to parse it.
type setting struct {
	env, help, def string
	set            func(string) error
}

func (c *Config) settings() []setting {
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	return []setting{
		{"ADDR", "listen address", ":8080", str(&c.Addr)},
		{"DATA_DIR", "directory of the embedded broker and store and of generated secrets", "./data", str(&c.DataDir)},
		{"REDIS_URL", "Redis URL (redis://host:6379/0); empty runs the embedded store", "", str(&c.RedisURL)},
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
		{"KAFKA_PARTITIONS", "partitions of game-taps in the embedded broker", "6", func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				return fmt.Errorf("must be a whole number from 1 to 1000")
			}
			c.KafkaPartitions = n
			return nil
		}},
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
		{"DEBUG_ADDR", "address of a Go pprof listener (/debug/pprof/) for profiling; keep it private (e.g. 127.0.0.1:6060); empty = off", "", str(&c.DebugAddr)},
		{"ADMIN_TOKEN", "token of the admin page /admin (at least 16 characters); empty = generated and kept in DATA_DIR/admin.token", "", func(v string) error {
			if v != "" && len(v) < 16 {
				return fmt.Errorf("must be at least 16 characters")
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
		{"JOIN_RATE_LIMIT", "new players per client address per minute; 0 = no limit", "30", intSetting(&c.JoinRateLimit)},
		{"MAX_CONNECTIONS", "live connections (WebSocket + SSE) per instance; 0 = no limit", "10000", intSetting(&c.MaxConnections)},
		{"MAX_CONNECTIONS_PER_IP", "live connections per client address (IPv6: per /64); 0 = no limit", "50", intSetting(&c.MaxConnectionsPerIP)},
		{"TRUSTED_PROXIES", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client; empty = the TCP peer is the client", "", func(v string) error {
			c.TrustedProxies = nil
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					c.TrustedProxies = append(c.TrustedProxies, p)
				}
			}
			_, err := handlers.IPExtractor(c.TrustedProxies)
			return err
		}},
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

// Parse fills c from defaults, then getenv, then args (flags).
func (c *Config) Parse(args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("tapwars", flag.ContinueOnError)
	fs.SetOutput(out)
	ss := c.settings()
	for _, s := range ss {
		v := s.def
		if e := getenv(s.env); e != "" {
			v = e
		}
		if err := s.set(v); err != nil {
			return fmt.Errorf("%s=%q: %w", s.env, v, err)
		}
		fs.Func(FlagName(s.env), s.help+" (env "+s.env+", default "+strconv.Quote(s.def)+")", s.set)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	return nil
}
