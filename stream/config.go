package stream

import (
	"fmt"
	"time"

	"github.com/IBM/sarama"
	metrics "github.com/rcrowley/go-metrics"
)

func init() {
	// sarama's go-metrics registry costs ~5% of ingest throughput and
	// tapwars exports its own Prometheus metrics.
	metrics.UseNilMetrics = true
}

// DefaultVersion is the Kafka protocol version sarama speaks unless
// KAFKA_VERSION says otherwise. 3.6 works with Kafka 3.x and 4.x (4.0 dropped
// the protocol versions older than 2.1) and with the embedded kfake broker.
const DefaultVersion = "3.6.0"

// Config is what both the producer and the consumer need to reach Kafka.
type Config struct {
	Brokers  []string
	Version  string // Kafka protocol version, e.g. "3.6.0"
	ClientID string
	Group    string   // consumer group id
	Security Security // TLS and SASL; the zero value is plaintext
}

// saramaConfig is the one place where sarama is configured.
//
// Partitioner: records are keyed by player id and partitioned with CRC32,
// the same as librdkafka (kcat) and the old KafkaJS app's default Java-compatible
// choice is murmur2; CRC32 was chosen so that `kcat -P -K` writes a player's taps
// to the same partition as this app does. Ordering per player only matters for
// presence, never for counts, so a producer with another partitioner still
// counts exactly.
func saramaConfig(c Config) (*sarama.Config, error) {
	v := c.Version
	if v == "" {
		v = DefaultVersion
	}
	ver, err := sarama.ParseKafkaVersion(v)
	if err != nil {
		return nil, fmt.Errorf("KAFKA_VERSION %q: %w", v, err)
	}
	cfg := sarama.NewConfig()
	cfg.Version = ver
	cfg.ClientID = c.ClientID
	if cfg.ClientID == "" {
		cfg.ClientID = "tapwars"
	}
	cfg.Net.DialTimeout = 3 * time.Second
	cfg.Net.ReadTimeout = 10 * time.Second
	cfg.Net.WriteTimeout = 5 * time.Second
	cfg.Metadata.Retry.Max = 3
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	cfg.Metadata.RefreshFrequency = time.Minute

	// Producer: stream.Producer builds its produce requests itself (see
	// producer.go) and reads these. Idempotent, acks from all in-sync
	// replicas, so a resent batch never writes a tap twice and an
	// acknowledged tap is durable; Validate checks that the version supports
	// idempotence (Idempotent needs Retry.Max >= 1 and MaxOpenRequests = 1).
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond // first pause before a batch is resent
	cfg.Producer.Timeout = 5 * time.Second              // how long the broker may wait for the in-sync replicas
	cfg.Producer.Partitioner = sarama.NewConsistentCRCHashPartitioner
	cfg.Producer.MaxMessageBytes = 1 << 20              // the most one produce request carries
	cfg.Producer.Flush.Frequency = 2 * time.Millisecond // linger from idle before a request

	// Consumer group: offsets that matter live in Redis (see store.Apply);
	// the ones committed to Kafka only feed lag monitoring.
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = true
	cfg.Consumer.Offsets.AutoCommit.Interval = time.Second
	cfg.Consumer.Fetch.Default = 1 << 20
	// Let the broker hold a fetch until 256 KiB are waiting or 25 ms have
	// passed: under load, batches grow from ~8 to ~50-100 records per
	// partition, which cut the CPU per tap of server, Redis and broker
	// together by ~15% (docs/BENCHMARKS.md), for ~25 ms of freshness at low
	// rates (p99 at 1,000 taps/s 64 -> 92 ms).
	cfg.Consumer.Fetch.Min = 256 << 10
	cfg.Consumer.MaxWaitTime = 25 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 2 * time.Second
	cfg.ChannelBufferSize = 4096
	if err := c.Security.apply(cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka config: %w", err)
	}
	return cfg, nil
}

// producerConfig is saramaConfig for the producer's own client. The
// producer refreshes metadata in a goroutine of its own and retries with its
// own backoff, so sarama's retries inside one refresh (3 × 250 ms while a
// broker is down) would only delay noticing that the broker is back.
func producerConfig(c Config) (*sarama.Config, error) {
	cfg, err := saramaConfig(c)
	if err != nil {
		return nil, err
	}
	cfg.Metadata.Retry.Max = 1
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	return cfg, nil
}
