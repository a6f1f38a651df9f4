package stream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// Tests of Producer.Produce and Partitions, the generic path other events
// (joins, kicks, round markers, imports) take, against kfake over TCP.

const eventsTopic = "game-events-test"

// Produce writes keyed records on their CRC partition in the order given,
// records with a partition exactly there (a marker on every partition),
// headers and tombstones as given, and returns only once all are
// acknowledged; Partitions reads the topic's partition count.
func TestProduceRecords(t *testing.T) {
	k := testenv.StartKafka(t, 4, stream.Topic, eventsTopic)
	p := newProducer(t, k.Addrs())
	n, err := p.Partitions(eventsTopic)
	if err != nil || n != 4 {
		t.Fatalf("partitions of %s: %d %v", eventsTopic, n, err)
	}
	if n, err := p.Partitions(stream.Topic); err != nil || n != 4 {
		t.Fatalf("partitions of %s: %d %v", stream.Topic, n, err)
	}

	ctx := context.Background()
	// A round marker on each partition, in one call.
	var markers []stream.Record
	for i := range n {
		markers = append(markers, stream.Record{Partition: i, Value: []byte(`{"round":2}`), Headers: map[string]string{"type": "round"}})
	}
	if err := p.Produce(ctx, eventsTopic, markers...); err != nil {
		t.Fatal(err)
	}
	// Keyed records from concurrent callers; each player's in order.
	var wg sync.WaitGroup
	for u := range 20 {
		wg.Go(func() {
			key := fmt.Sprintf("player-%d", u)
			for i := range 10 {
				r := stream.Record{Key: key, Partition: stream.ByKey, Value: fmt.Appendf(nil, "%d", i)}
				if err := p.Produce(ctx, eventsTopic, r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := p.Produce(ctx, eventsTopic, stream.Record{Key: "player-0", Partition: stream.ByKey}); err != nil { // tombstone
		t.Fatal(err)
	}

	recs := testenv.TopicMessages(t, k.Addrs(), eventsTopic)
	if len(recs) != int(n)+20*10+1 {
		t.Fatalf("%d records, want %d", len(recs), int(n)+201)
	}
	next := map[string]int{}
	markersOn := map[int32]bool{}
	tombstones := 0
	for _, m := range recs {
		if len(m.Key) == 0 {
			if string(m.Value) != `{"round":2}` || len(m.Headers) != 1 || string(m.Headers[0].Key) != "type" || string(m.Headers[0].Value) != "round" {
				t.Fatalf("marker on partition %d: %q %v", m.Partition, m.Value, m.Headers)
			}
			markersOn[m.Partition] = true
			continue
		}
		key := string(m.Key)
		if want := crcPartition(t, key, n); m.Partition != want {
			t.Fatalf("%s on partition %d, the CRC partitioner gives %d", key, m.Partition, want)
		}
		if m.Value == nil {
			tombstones++
			continue
		}
		if got := string(m.Value); got != fmt.Sprint(next[key]) {
			t.Fatalf("%s: record %q where %d was due (out of order)", key, got, next[key])
		}
		next[key]++
	}
	if len(markersOn) != int(n) || tombstones != 1 {
		t.Fatalf("markers on %d partitions, %d tombstones", len(markersOn), tombstones)
	}
}

// Bad records get a clear EINVALID error and leave the producer working; a
// Produce after Close gets an EUNAVAILABLE one.
func TestProduceErrors(t *testing.T) {
	k := testenv.StartKafka(t, 2, stream.Topic)
	p := newProducer(t, k.Addrs())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	err := p.Produce(ctx, stream.Topic, stream.Record{Partition: stream.ByKey, Value: []byte("x")})
	if game.ErrorCode(err) != game.EINVALID {
		t.Fatalf("record without key or partition: %v", err)
	}
	err = p.Produce(ctx, stream.Topic, stream.Record{Partition: 7, Value: []byte("x")})
	if game.ErrorCode(err) != game.EINVALID || !errors.Is(err, sarama.ErrInvalidPartition) {
		t.Fatalf("record for partition 7 of 2: %v", err)
	}
	if err := p.Produce(ctx, stream.Topic); err != nil {
		t.Fatalf("no records: %v", err)
	}
	// The producer still works after refusing those.
	if err := p.Produce(ctx, stream.Topic, stream.Record{Partition: 1, Value: []byte(`{"userId":"u1"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	err = p.Produce(ctx, stream.Topic, stream.Record{Key: "u", Partition: stream.ByKey})
	if game.ErrorCode(err) != game.EUNAVAILABLE || !errors.Is(err, stream.ErrClosed) || !errors.Is(err, game.ErrUnavailable) {
		t.Fatalf("produce after Close: %v", err)
	}
	if _, err := p.Partitions(stream.Topic); err == nil {
		t.Fatal("partitions after Close: no error")
	}
}
