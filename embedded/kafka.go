package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// KafkaOptions configures StartKafka.
type KafkaOptions struct {
	// Dir is kfake's data directory (created if missing), e.g.
	// DATA_DIR/kafka. Topics, records and committed group offsets survive
	// restarts, also without Close.
	Dir string
	// Partitions of the seeded and auto-created topics; <= 0 means 1.
	Partitions int32
	// Topics are created at start when missing. An existing topic keeps its
	// partition count (a mismatch is logged).
	Topics []string
	// Port to listen on (127.0.0.1); 0 picks a free port.
	Port int
	// SyncWrites fsyncs every produced batch before acknowledging it.
	// Without it, kfake fsyncs on segment roll and shutdown only, so a
	// machine crash (not a process crash) can lose recent records.
	SyncWrites bool
	// Logger receives kfake's log at debug level (errors at warn); nil
	// means slog.Default().
	Logger *slog.Logger
}

// Kafka is a running single-broker Kafka-protocol cluster.
type Kafka struct {
	c     *kfake.Cluster
	addrs []string
	lock  *os.File
	once  sync.Once
}

// StartKafka starts kfake with its data in o.Dir.
func StartKafka(o KafkaOptions) (*Kafka, error) {
	dir, logger, err := prepare("kafka", o.Dir, o.Logger)
	if err != nil {
		return nil, err
	}
	// Two brokers on one data directory would corrupt it.
	lock, err := lockDir(dir, lockWait)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	p := o.Partitions
	if p <= 0 {
		p = 1
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DataDir(dir),
		kfake.DefaultNumPartitions(int(p)),
		kfake.AllowAutoTopicCreation(),
		kfake.WithLogger(slogKfake{logger}),
	}
	// SeedTopics only applies to a fresh data directory; missing topics of
	// an existing one are created below.
	if len(o.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(p, o.Topics...))
	}
	if o.Port > 0 {
		opts = append(opts, kfake.Ports(o.Port))
	}
	if o.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		unlockDir(lock)
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	for _, t := range o.Topics {
		if c.TopicInfo(t) == nil {
			if err := c.CreateTopic(t, p, nil); err != nil {
				c.Close()
				unlockDir(lock)
				return nil, fmt.Errorf("embedded kafka: creating topic %s: %w", t, err)
			}
			logger.Info("embedded kafka: created topic", "topic", t, "partitions", p)
			continue
		}
		if n := int32(len(c.PartitionInfos(t))); n != p {
			logger.Warn("embedded kafka: existing topic keeps its partition count", "topic", t, "partitions", n, "wanted", p)
		}
	}
	k := &Kafka{c: c, addrs: c.ListenAddrs(), lock: lock}
	logger.Info("embedded kafka: broker ready", "dir", dir, "addrs", k.addrs)
	return k, nil
}

// Addrs are the broker's host:port seeds.
func (k *Kafka) Addrs() []string { return append([]string(nil), k.addrs...) }

// Cluster exposes the kfake cluster (topic info, tests).
func (k *Kafka) Cluster() *kfake.Cluster { return k.c }

// Close shuts the broker down; kfake writes its state and fsyncs.
func (k *Kafka) Close() error {
	k.once.Do(func() {
		k.c.Close()
		unlockDir(k.lock)
	})
	return nil
}

// slogKfake routes kfake's log to slog: errors at warn, everything else at
// debug.
type slogKfake struct{ l *slog.Logger }

func (s slogKfake) Logf(level kfake.LogLevel, format string, args ...any) {
	lv := slog.LevelDebug
	if level == kfake.LogLevelError {
		lv = slog.LevelWarn
	}
	ctx := context.Background()
	if !s.l.Enabled(ctx, lv) {
		return
	}
	s.l.Log(ctx, lv, "kfake: "+fmt.Sprintf(format, args...))
}
