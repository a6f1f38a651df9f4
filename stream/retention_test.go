package stream_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/metrics"
	"github.com/tapwars/tapwars/stream"
)

// problems is tapwars_log_problems_total{problem=kind}.
func problems(t *testing.T, kind string) float64 {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tapwars_log_problems_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "problem" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// Retention deletes records of a partition while the consumer is behind
// (they are fetched but not applied yet, and more wait in the log): the
// consumer says so (a deleted_before_applied problem) and goes on with the
// records after, instead of leaving the partition stopped without a word
// (sarama closes a partition consumer whose offset is out of range).
func TestRecordsDeletedWhileConsumingAreLoud(t *testing.T) {
	e := newEnv(t, 1)
	u := e.players[0]
	ctx := context.Background()
	var hold atomic.Bool
	release := make(chan struct{})
	c, err := stream.NewConsumer(e.cfg, e.st, quiet, stream.ConsumerOptions{MaxBatch: 100, BeforeApply: func(game.Batch) {
		if hold.Load() {
			<-release
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(rctx) }()
	t.Cleanup(func() { cancel(); _ = c.Close(); <-done })

	p := e.producer(t)
	rng := rand.New(rand.NewPCG(7, 8))
	part := int32(0)
	write := func(n int) {
		recs := make([]stream.Record, 0, 1000)
		for i := range n {
			// 2 KB each (a long id), so the consumer's buffers hold a few
			// thousand and the rest waits in the log.
			v, _ := stream.EncodeEvent(game.TapEvent{ID: fmt.Sprintf("%d-%x", i, randomBytes(rng, 1000)), UserID: u.ID, Username: u.Username, Team: u.Team, Timestamp: time.Now().UnixMilli()})
			recs = append(recs, stream.Record{Key: u.ID, Value: v, Partition: part})
			if len(recs) == cap(recs) || i == n-1 {
				if err := p.Produce(ctx, stream.Topic, recs...); err != nil {
					t.Fatal(err)
				}
				recs = recs[:0]
			}
		}
	}
	// The consumer is at the log's end of the partition, then held while
	// more than it buffers (4,096 records) arrive.
	write(1)
	testenv.Eventually(t, 30*time.Second, func() string {
		if offs, _ := e.st.Offsets(ctx, stream.Topic, []int32{part}); offs[part] != 1 {
			return fmt.Sprintf("stored offset %d, want 1", offs[part])
		}
		return ""
	})
	hold.Store(true)
	write(20_000)
	before := problems(t, "deleted_before_applied")
	end := int64(0)
	client, err := sarama.NewClient(e.k.Addrs(), sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if end, err = client.GetOffset(stream.Topic, part, sarama.OffsetNewest); err != nil {
		t.Fatal(err)
	}
	deleteRecords(t, e.k.Addrs(), stream.Topic, part, end)
	hold.Store(false)
	close(release)

	write(5) // after the deletion: these must count
	testenv.Eventually(t, 30*time.Second, func() string {
		offs, err := e.st.Offsets(ctx, stream.Topic, []int32{part})
		if err != nil {
			return err.Error()
		}
		if offs[part] != end+5 {
			return fmt.Sprintf("stored offset %d, the log ends at %d", offs[part], end+5)
		}
		return ""
	})
	if n := problems(t, "deleted_before_applied") - before; n < 1 {
		t.Fatalf("deleted_before_applied counted %v times", n)
	}
	if d := c.LogDetail(ctx); d == "ok" {
		t.Fatal("the consumer's log detail says ok")
	}
	t.Logf("log detail: %s", c.LogDetail(ctx))
}
