package testenv

import (
	"testing"

	"github.com/IBM/sarama"
)

// ProducerIDs reads every record batch of topic with a client of its own
// (cfg, or nil for the super user's settings of a test cluster) and counts the
// batches per producer id, the idempotent producer's identity: a producer
// that keeps its id across broker failures writes all its batches under
// one id, one that starts over takes a new id each time.
func ProducerIDs(t testing.TB, brokers []string, cfg *sarama.Config, topic string) map[int64]int {
	t.Helper()
	if cfg == nil {
		cfg = readerConfig(brokers)
	}
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int64]int{}
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		off, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		leader, err := client.Leader(topic, p)
		if err != nil {
			t.Fatal(err)
		}
		for off < end {
			req := &sarama.FetchRequest{Version: 4, MaxWaitTime: 100, MinBytes: 1, MaxBytes: 4 << 20}
			req.AddBlock(topic, p, off, 1<<20, -1)
			res, err := leader.Fetch(req)
			if err != nil {
				t.Fatalf("fetch %s/%d at %d: %v", topic, p, off, err)
			}
			b := res.GetBlock(topic, p)
			if b == nil || b.Err != sarama.ErrNoError {
				t.Fatalf("fetch %s/%d at %d: %v", topic, p, off, b)
			}
			next := off
			for _, rs := range b.RecordsSet {
				if rb := rs.RecordBatch; rb != nil {
					ids[rb.ProducerID]++
					next = max(next, rb.FirstOffset+int64(rb.LastOffsetDelta)+1)
				}
			}
			if next == off {
				t.Fatalf("fetch %s/%d at %d: no complete batch", topic, p, off)
			}
			off = next
		}
	}
	return ids
}
