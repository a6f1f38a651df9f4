package testenv

import (
	"strings"
	"testing"
)

// Broker is a Kafka the tests run tapwars against: kfake (*Kafka) or real
// Apache Kafka (*ApacheKafka).
type Broker interface {
	Addrs() []string
	// Env are tapwars' settings that reach the broker: KAFKA_BROKERS, and
	// the security settings when it has any.
	Env() map[string]string
}

// KafkaKinds name the brokers the Kafka-facing tests run against, in the
// order they run: kfake first (fast), then one Apache Kafka node.
var KafkaKinds = []string{"kfake", "apache"}

// EachKafka runs f as a subtest per broker kind (KafkaKinds), so one test
// body checks both. The apache subtest skips (or fails under CI=true) as
// RequireApacheKafka says.
func EachKafka(t *testing.T, f func(t *testing.T, kind string)) {
	t.Helper()
	for _, kind := range KafkaKinds {
		t.Run(kind, func(t *testing.T) { f(t, kind) })
	}
}

// StartBroker starts a broker of kind with topics of partitions each: kfake
// with them seeded, or a one-node Apache Kafka with them created (it
// creates no topic on its own, as production clusters do not).
func StartBroker(t testing.TB, kind string, partitions int32, topics ...string) Broker {
	t.Helper()
	switch kind {
	case "kfake":
		return StartKafka(t, partitions, topics...)
	case "apache":
		k := StartApacheKafka(t, ApacheKafkaOptions{})
		if len(topics) > 0 {
			k.CreateTopics(t, partitions, topics...)
		}
		return k
	}
	t.Fatalf("StartBroker: unknown kind %q (want one of %v)", kind, KafkaKinds)
	return nil
}

// Env is KAFKA_BROKERS (kfake with SASL or TLS needs its settings from the
// test that chose them).
func (k *Kafka) Env() map[string]string {
	return map[string]string{"KAFKA_BROKERS": strings.Join(k.Addrs(), ",")}
}

// EnvList is env as KEY=VALUE entries, for a process's environment.
func EnvList(env map[string]string) []string {
	var out []string
	for key, v := range env {
		out = append(out, key+"="+v)
	}
	return out
}
