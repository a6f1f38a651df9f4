package stream_test

import (
	"testing"

	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// broker is a Kafka a test runs against: kfake, or (with the harness)
// Apache Kafka. compact asks for compaction now where the broker can be
// asked (kfake); Apache Kafka's cleaner runs by itself, so tests poll.
type broker struct {
	name    string
	addrs   []string
	compact func()
	// deleteRecords moves partition p's log start to offset (DeleteRecords).
	kfake *testenv.Kafka
}

// brokers are the Kafkas every log test runs against.
var brokers = []struct {
	name  string
	start func(t *testing.T) broker
}{
	{"kfake", func(t *testing.T) broker {
		k := testenv.StartKafka(t, 2, stream.Topic)
		return broker{name: "kfake", addrs: k.Addrs(), compact: k.Cluster.Compact, kfake: k}
	}},
}
