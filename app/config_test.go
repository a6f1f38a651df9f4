package app

import (
	"io"
	"strings"
	"testing"
	"time"
)

// KAFKA_COMPRESSION takes sarama's codec names, defaults to lz4, and a
// wrong name is refused with the names it takes.
func TestConfigKafkaCompression(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	var c Config
	if err := c.Parse(nil, env(nil), io.Discard); err != nil || c.KafkaCompression != "lz4" {
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

// The doors' defaults: metrics on loopback only, connection caps under the
// file limit sized for a room behind one NAT, timeouts for phones on a
// crowded Wi-Fi, joins at most half per address.
func TestConfigDoorsDefaults(t *testing.T) {
	var c Config
	if err := c.Parse(nil, func(string) string { return "" }, io.Discard); err != nil {
		t.Fatal(err)
	}
	if c.MetricsAddr != "127.0.0.1:9090" || c.MaxTCPConnections != 15000 || c.MaxTCPConnectionsPerIP != 3000 ||
		c.HeaderTimeout != 10*time.Second || c.IdleTimeout != 30*time.Second || c.JoinsPerSecond != 100 || c.JoinRateLimit != 600 {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Parse([]string{"-http-header-timeout", "0s"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("a zero header timeout was accepted")
	}
}
