package stream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// createCheckpointTopic creates game-checkpoints the way an operator
// tuning compaction would (the app finds it there): segments roll and get
// cleaned at once, tombstones go at once.
// openCheckpointLog opens a CheckpointLog on cfg's brokers, closed when
// the test ends.
func openCheckpointLog(t *testing.T, cfg stream.Config) *stream.CheckpointLog {
	t.Helper()
	cps, err := stream.NewCheckpointLog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cps.Close() })
	return cps
}

func createCheckpointTopic(t *testing.T, addrs []string) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	admin, err := sarama.NewClusterAdmin(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	v := func(s string) *string { return &s }
	err = admin.CreateTopic(stream.CheckpointTopic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: -1, ConfigEntries: map[string]*string{
		"cleanup.policy": v("compact"), "segment.ms": v("100"), "min.cleanable.dirty.ratio": v("0.01"),
		"min.compaction.lag.ms": v("0"), "delete.retention.ms": v("0"), "max.message.bytes": v("2097152"),
	}}, false)
	if err != nil {
		t.Fatal(err)
	}
}

// topicBytes is the size of topic's logs on the brokers (DescribeLogDirs).
func topicBytes(t *testing.T, addrs []string, topic string) int64 {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	admin, err := sarama.NewClusterAdmin(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	md, _, err := admin.DescribeCluster()
	if err != nil {
		t.Fatal(err)
	}
	var ids []int32
	for _, b := range md {
		ids = append(ids, b.ID())
	}
	dirs, err := admin.DescribeLogDirs(ids)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, ds := range dirs {
		for _, d := range ds {
			for _, tp := range d.Topics {
				if tp.Topic == topic {
					for _, p := range tp.Partitions {
						n += p.Size
					}
				}
			}
		}
	}
	return n
}

// randomBytes is n bytes that do not compress (zstd would hide the size).
func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Twenty checkpoints of 1.1-1.6 MB (3 or 4 chunks each), then compaction:
// the topic keeps about two checkpoints, not twenty, and the newest reads
// back exactly. Before chunks were keyed by slot, every checkpoint's chunks
// had keys of their own and all twenty stayed.
func TestCheckpointsStayBounded(t *testing.T) {
	eachLogBroker(t, 1, func(t *testing.T, k logBroker) {
		{
			createCheckpointTopic(t, k.Addrs())
			cps := openCheckpointLog(t, stream.Config{Brokers: k.Addrs()})
			ctx := context.Background()
			r := rand.New(rand.NewPCG(1, 2))
			var last []byte
			var written int64
			for i := range 20 {
				last = randomBytes(r, 1_100_000+r.IntN(500_000))
				written += int64(len(last))
				if err := cps.Write(ctx, last, time.Now()); err != nil {
					t.Fatalf("checkpoint %d: %v", i, err)
				}
				time.Sleep(150 * time.Millisecond) // segment.ms: each checkpoint rolls a segment
			}
			before := topicBytes(t, k.Addrs(), stream.CheckpointTopic)
			bound := int64(2.5 * 1_600_000)
			testenv.Eventually(t, 90*time.Second, func() string {
				k.compact()
				if n := topicBytes(t, k.Addrs(), stream.CheckpointTopic); n > bound {
					return fmt.Sprintf("%d bytes left after compaction, more than %d (two checkpoints and a half)", n, bound)
				}
				return ""
			})
			after := topicBytes(t, k.Addrs(), stream.CheckpointTopic)
			t.Logf("20 checkpoints, %d bytes of data: %d bytes on the broker before compaction, %d after", written, before, after)
			got, info, err := cps.Latest(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, last) {
				t.Fatalf("newest checkpoint reads back %d bytes, not the %d written last", len(got), len(last))
			}
			t.Logf("newest: %s, %d chunks", info.ID, info.Chunks)
		}
	})
}

// A writer dies half-way through a checkpoint (its chunks are written,
// its head is not), compaction runs: the newest complete checkpoint still
// reads back, and the next writer's checkpoint is the newest after it.
func TestHalfWrittenCheckpointLeavesTheNewestReadable(t *testing.T) {
	eachLogBroker(t, 1, func(t *testing.T, k logBroker) {
		{
			createCheckpointTopic(t, k.Addrs())
			cfg := stream.Config{Brokers: k.Addrs()}
			cps := openCheckpointLog(t, cfg)
			ctx := context.Background()
			r := rand.New(rand.NewPCG(3, 4))
			one, two := randomBytes(r, 1_200_000), randomBytes(r, 700_000)
			for _, d := range [][]byte{one, two} {
				if err := cps.Write(ctx, d, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			// The dying writer: every chunk key it could write (both
			// slots' first chunks would be a second writer; a writer
			// writes the slot the newest head does not name, here "a"),
			// and no head.
			prod, err := stream.NewProducer(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()
			hdr := map[string]string{"checkpoint": "dead0000dead0000"}
			if err := prod.Produce(ctx, stream.CheckpointTopic,
				stream.Record{Key: "a/0", Value: randomBytes(r, 500_000), Headers: hdr},
				stream.Record{Key: "a/1", Value: randomBytes(r, 500_000), Headers: hdr},
				stream.Record{Key: "a/2", Value: randomBytes(r, 500_000), Headers: hdr}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(150 * time.Millisecond)
			if err := prod.Produce(ctx, stream.CheckpointTopic, stream.Record{Key: "other", Value: []byte("x")}); err != nil {
				t.Fatal(err) // rolls the segment, so the half checkpoint can be cleaned
			}
			// Until the cleaner removed checkpoint one's chunks (slot "a",
			// overwritten by the dying writer), the newest reads back.
			cleaned := topicBytes(t, k.Addrs(), stream.CheckpointTopic) - 1_000_000 // checkpoint one: 1.2 MB
			testenv.Eventually(t, 60*time.Second, func() string {
				k.compact()
				got, _, err := cps.Latest(ctx)
				if err != nil || !bytes.Equal(got, two) {
					t.Fatalf("after a half-written checkpoint: %d bytes, %v; want the %d of the newest complete one", len(got), err, len(two))
				}
				if n := topicBytes(t, k.Addrs(), stream.CheckpointTopic); n > cleaned {
					return fmt.Sprintf("%d bytes: not compacted yet", n)
				}
				return ""
			})
			// A new process writes the next one.
			next := openCheckpointLog(t, cfg)
			three := randomBytes(r, 300_000)
			if err := next.Write(ctx, three, time.Now()); err != nil {
				t.Fatal(err)
			}
			k.compact()
			if got, _, err := cps.Latest(ctx); err != nil || !bytes.Equal(got, three) {
				t.Fatalf("after the next checkpoint: %d bytes, %v; want %d", len(got), err, len(three))
			}
		}
	})
}

// Latest tells "no checkpoint" (no topic, or an empty one) from "cannot
// read it": before, any metadata error was "no checkpoint".
func TestLatestTellsMissingFromUnreadable(t *testing.T) {
	k := testenv.StartKafka(t, 1, stream.Topic)
	cfg := stream.Config{Brokers: k.Addrs()}
	if _, err := stream.EnsureTopics(cfg, stream.Topics{}, quiet); err != nil {
		t.Fatal(err)
	}
	cps := openCheckpointLog(t, cfg)
	ctx := context.Background()
	if _, _, err := cps.Latest(ctx); !errors.Is(err, stream.ErrNoCheckpoint) {
		t.Fatalf("empty topic: %v, want ErrNoCheckpoint", err)
	}
	if err := cps.Write(ctx, []byte("state"), time.Now()); err != nil {
		t.Fatal(err)
	}
	k.Stop() // the broker is gone: the checkpoint exists but cannot be read
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, _, err := cps.Latest(rctx)
	var ce *stream.CheckpointError
	if !errors.As(err, &ce) || errors.Is(err, stream.ErrNoCheckpoint) {
		t.Fatalf("broker down: %v, want a CheckpointError", err)
	}
	t.Logf("broker down: %v", err)
}

// Two writers at once (a rebalance moved partition 0 while a checkpoint
// was being written): the second overwrites a chunk of the newest
// checkpoint, and compaction removes the original. The newest is then
// incomplete, and the reader takes the other slot's complete checkpoint;
// at no point is there no readable checkpoint. Before, the single "head"
// key left only the broken newest one.
func TestCheckpointBrokenBySecondWriterFallsBack(t *testing.T) {
	eachLogBroker(t, 1, func(t *testing.T, k logBroker) {
		createCheckpointTopic(t, k.Addrs())
		cfg := stream.Config{Brokers: k.Addrs()}
		cps := openCheckpointLog(t, cfg)
		ctx := context.Background()
		r := rand.New(rand.NewPCG(5, 6))
		one, two := randomBytes(r, 900_000), randomBytes(r, 600_000)
		for _, d := range [][]byte{one, two} {
			if err := cps.Write(ctx, d, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		prod, err := stream.NewProducer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		// The other writer's first chunk lands in slot "b", after two's head.
		if err := prod.Produce(ctx, stream.CheckpointTopic, stream.Record{Key: "b/0", Value: randomBytes(r, 1000),
			Headers: map[string]string{"checkpoint": "beef0000beef0000"}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
		if err := prod.Produce(ctx, stream.CheckpointTopic, stream.Record{Key: "other", Value: []byte("x")}); err != nil {
			t.Fatal(err) // rolls the segment
		}
		testenv.Eventually(t, 60*time.Second, func() string {
			// Another record on every poll rolls the active segment (Kafka
			// compacts only segments that are not active) and adds dirty
			// bytes: when the cleaner ran between the two checkpoints and
			// the other writer's chunk, that 1 KB chunk alone is below the
			// topic's min.cleanable.dirty.ratio (1% of the 1.5 MB cleaned).
			if err := prod.Produce(ctx, stream.CheckpointTopic, stream.Record{Key: "other", Value: randomBytes(r, 32_000)}); err != nil {
				t.Fatal(err)
			}
			k.compact()
			got, _, err := cps.Latest(ctx)
			switch {
			case err != nil:
				t.Fatalf("no readable checkpoint: %v", err)
			case bytes.Equal(got, two):
				return "two still complete: not compacted yet"
			case !bytes.Equal(got, one):
				t.Fatalf("read %d bytes that are neither checkpoint", len(got))
			}
			return ""
		})
	})
}

// Each CheckpointLog knows the newest checkpoint it wrote or read (its
// instance's tapwars_checkpoint_age_seconds), not another one's: a reader
// knows none until it reads.
func TestCheckpointLogKnowsItsNewest(t *testing.T) {
	k := testenv.StartKafka(t, 1, stream.Topic)
	cfg := stream.Config{Brokers: k.Addrs()}
	if _, err := stream.EnsureTopics(cfg, stream.Topics{}, quiet); err != nil {
		t.Fatal(err)
	}
	writer := openCheckpointLog(t, cfg)
	reader := openCheckpointLog(t, cfg)
	ctx := context.Background()
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	if err := writer.Write(ctx, []byte("state"), at); err != nil {
		t.Fatal(err)
	}
	if got := writer.NewestAt(); !got.Equal(at) {
		t.Fatalf("writer's newest %v, want %v", got, at)
	}
	if got := reader.NewestAt(); !got.IsZero() {
		t.Fatalf("reader's newest %v before it read any", got)
	}
	if _, err := reader.Newest(ctx); err != nil {
		t.Fatal(err)
	}
	if got := reader.NewestAt(); !got.Equal(at) {
		t.Fatalf("reader's newest %v after Newest, want %v", got, at)
	}
	later := at.Add(30 * time.Second)
	if err := writer.Write(ctx, []byte("state 2"), later); err != nil {
		t.Fatal(err)
	}
	if _, _, err := reader.Latest(ctx); err != nil {
		t.Fatal(err)
	}
	if got := reader.NewestAt(); !got.Equal(later) {
		t.Fatalf("reader's newest %v after Latest, want %v", got, later)
	}
}
