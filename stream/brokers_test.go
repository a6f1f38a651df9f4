package stream_test

import (
	"testing"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// logBroker is a Kafka the log tests (compaction, retention, transactions)
// run against: kfake, or one Apache Kafka node whose log cleaner runs every
// 100 ms. compact runs compaction now where the broker can be asked (kfake);
// Apache Kafka's cleaner runs by itself, so tests poll.
type logBroker struct {
	testenv.Broker
	compact func()
	// deleteRecords moves the start of topic's partition p to offset.
	deleteRecords func(t *testing.T, topic string, p int32, offset int64)
}

// eachLogBroker runs f against kfake and Apache Kafka (testenv.EachKafka),
// with game-taps of partitions partitions.
func eachLogBroker(t *testing.T, partitions int32, f func(t *testing.T, b logBroker)) {
	testenv.EachKafka(t, func(t *testing.T, kind string) {
		var b logBroker
		switch kind {
		case "kfake":
			k := testenv.StartKafka(t, partitions, stream.Topic)
			b = logBroker{Broker: k, compact: k.Cluster.Compact}
		case "apache":
			k := testenv.StartApacheKafka(t, testenv.ApacheKafkaOptions{BrokerConfig: map[string]string{
				"log.cleaner.backoff.ms": "100", "log.retention.check.interval.ms": "100",
			}})
			k.CreateTopics(t, partitions, stream.Topic)
			b = logBroker{Broker: k, compact: func() {}}
		default:
			t.Skipf("no log broker of kind %s", kind)
		}
		b.deleteRecords = func(t *testing.T, topic string, p int32, offset int64) {
			t.Helper()
			deleteRecords(t, b.Addrs(), topic, p, offset)
		}
		f(t, b)
	})
}

// deleteRecords deletes topic's partition p below offset (DeleteRecords),
// as retention would.
func deleteRecords(t *testing.T, addrs []string, topic string, p int32, offset int64) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	admin, err := sarama.NewClusterAdmin(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.DeleteRecords(topic, map[int32]int64{p: offset}); err != nil {
		t.Fatalf("delete records of %s/%d below %d: %v", topic, p, offset, err)
	}
}
