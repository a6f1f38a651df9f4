package app

import (
	"io"
	"strings"
	"testing"
)

// KAFKA_COMPRESSION takes sarama's codec names, defaults to zstd, and a
// wrong name is refused with the names it takes.
func TestConfigKafkaCompression(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	var c Config
	if err := c.Parse(nil, env(nil), io.Discard); err != nil || c.KafkaCompression != "zstd" {
		t.Fatalf("default: %q %v", c.KafkaCompression, err)
	}
	for _, v := range []string{"none", "lz4", "zstd", "snappy", "gzip"} {
		var c Config
		if err := c.Parse(nil, env(map[string]string{"KAFKA_COMPRESSION": v}), io.Discard); err != nil || c.KafkaCompression != v {
			t.Fatalf("%s: %q %v", v, c.KafkaCompression, err)
		}
	}
	err := c.Parse([]string{"-kafka-compression", "brotli"}, env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "none, lz4, zstd, snappy or gzip") {
		t.Fatalf("brotli: %v", err)
	}
}
