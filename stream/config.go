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
	// Compression of the producer's record batches: none, gzip, snappy,
	// lz4 or zstd; "" is DefaultCompression.
	Compression string
}

// DefaultCompression is the codec of record batches unless
// KAFKA_COMPRESSION says otherwise. Ingest is bound by CPU: lz4 keeps most
// of what compression saves in log bytes for a fraction of zstd's CPU per
// tap, and decompresses fastest for replays; zstd suits a log whose size
// matters more (docs/BENCHMARKS.md, "Compression").
const DefaultCompression = "lz4"

// ParseCompression is the sarama codec named by KAFKA_COMPRESSION.
func ParseCompression(name string) (sarama.CompressionCodec, error) {
	if name == "" {
		name = DefaultCompression
	}
	var codec sarama.CompressionCodec
	if err := codec.UnmarshalText([]byte(name)); err != nil {
		return 0, fmt.Errorf("KAFKA_COMPRESSION %q: must be none, gzip, snappy, lz4 or zstd", name)
	}
	return codec, nil
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
	// Partitions added to game-taps are seen within this: the consumer
	// group rebalances when a refresh shows more (sarama checks at this
	// interval too).
	cfg.Metadata.RefreshFrequency = 10 * time.Second
	// Never let a broker create a topic with its defaults (1 partition,
	// replication factor 1 on stock Kafka): EnsureTopics creates tapwars'
	// topics with settings of its own.
	cfg.Metadata.AllowAutoTopicCreation = false

	// Producer (sarama's AsyncProducer, see producer.go): idempotent, acks
	// from all in-sync replicas, so a resent batch never writes a record
	// twice and an acknowledged record is durable. Idempotence needs
	// Retry.Max >= 1 and MaxOpenRequests = 1; Validate checks that the
	// version supports it.
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond
	cfg.Producer.Retry.BackoffFunc = retryBackoff
	cfg.Producer.Timeout = 5 * time.Second // how long the broker may wait for the in-sync replicas
	cfg.Producer.Partitioner = newRecordPartitioner
	cfg.Producer.MaxMessageBytes = 1 << 20 // the most one record batch carries
	// A request goes when 32 records (or 64 KiB) wait, or 2 ms after the
	// first: sent as soon as possible, requests carry a few records each
	// and the server and broker spend far more CPU per record; waiting for
	// more than 32 holds records back at moderate concurrency. While one
	// request is on the wire (MaxOpenRequests = 1) the next one fills.
	cfg.Producer.Flush.Frequency = 2 * time.Millisecond
	cfg.Producer.Flush.Messages = 32
	cfg.Producer.Flush.Bytes = 64 << 10
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	if cfg.Producer.Compression, err = ParseCompression(c.Compression); err != nil {
		return nil, err
	}

	// Consumer group: offsets that matter live in Redis (see store.Apply);
	// the ones committed to Kafka only feed lag monitoring.
	cfg.Consumer.Return.Errors = true
	// Transactional writers (Kafka Connect or MirrorMaker 2 exactly-once,
	// Kafka Streams) may share the topic: only committed records count.
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
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

// producerConfig is saramaConfig for the producer's own client. While a
// broker is down, sarama's retries inside one metadata refresh (3 × 250 ms)
// would only delay noticing that it is back.
func producerConfig(c Config) (*sarama.Config, error) {
	cfg, err := saramaConfig(c)
	if err != nil {
		return nil, err
	}
	cfg.Metadata.Retry.Max = 1
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	return cfg, nil
}

// retryBackoff is the pause before a message is sent again: none before the
// first try (a message that finds no leader fails at once instead of
// holding its partition's queue), then 100, 200, 250, 250… ms.
func retryBackoff(retries, _ int) time.Duration {
	if retries == 0 {
		return 0
	}
	return min(100*time.Millisecond<<(retries-1), 250*time.Millisecond)
}
