package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// CheckpointTopic keeps snapshots of the projection with the offsets they
// cover, where losing Redis cannot take them. It is compacted: each
// checkpoint is chunks keyed "<id>/<n>" then a head record keyed "head"
// naming the id and the number of chunks, written last, so a checkpoint
// whose writer died half-way is never read.
const CheckpointTopic = "game-checkpoints"

// checkpointChunk is the most bytes of one chunk record (Kafka's default
// message limit is 1 MiB).
const checkpointChunk = 512 << 10

// checkpointHead is the value of a head record.
type checkpointHead struct {
	ID     string `json:"id"`
	Chunks int    `json:"chunks"`
	At     int64  `json:"at"` // unix ms
}

// Checkpoints writes and reads checkpoints on CheckpointTopic.
type Checkpoints struct {
	client sarama.Client
	reader sarama.Consumer
	prod   RecordProducer
}

// NewCheckpoints connects to the brokers; EnsureTopics created the topic
// (1 partition, compacted) when it was missing.
func NewCheckpoints(c Config, prod RecordProducer) (*Checkpoints, error) {
	cfg, err := saramaConfig(c)
	if err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(c.Brokers, cfg)
	if err != nil {
		return nil, c.Security.explain(c.Brokers, err)
	}
	reader, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	return &Checkpoints{client: client, reader: reader, prod: prod}, nil
}

// Close closes the reader and the client.
func (cs *Checkpoints) Close() error {
	err := cs.reader.Close()
	if cerr := cs.client.Close(); err == nil && !errors.Is(cerr, sarama.ErrClosedClient) {
		err = cerr
	}
	return err
}

// Write stores one checkpoint (any bytes) and returns once Kafka
// acknowledged all of it.
func (cs *Checkpoints) Write(ctx context.Context, data []byte, at time.Time) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	head := checkpointHead{ID: hex.EncodeToString(b[:]), At: at.UnixMilli()}
	var recs []Record
	for lo := 0; lo < len(data) || lo == 0; lo += checkpointChunk {
		hi := min(lo+checkpointChunk, len(data))
		recs = append(recs, Record{Key: fmt.Sprintf("%s/%d", head.ID, head.Chunks), Value: data[lo:hi], Partition: 0})
		head.Chunks++
		if hi == len(data) {
			break
		}
	}
	if err := cs.prod.Produce(ctx, CheckpointTopic, recs...); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	hv, _ := json.Marshal(head) // cannot fail
	if err := cs.prod.Produce(ctx, CheckpointTopic, Record{Key: "head", Value: hv, Partition: 0}); err != nil {
		return fmt.Errorf("write checkpoint head: %w", err)
	}
	return nil
}

// checkpointWindow is how many records a search for the newest head reads
// at a time, going back from the end of the topic.
const checkpointWindow = 256

// Latest returns the newest complete checkpoint, or nil when there is none.
func (cs *Checkpoints) Latest(ctx context.Context) ([]byte, error) {
	if err := cs.client.RefreshMetadata(CheckpointTopic); err != nil {
		return nil, nil // no topic: no checkpoint
	}
	oldest, err := cs.client.GetOffset(CheckpointTopic, 0, sarama.OffsetOldest)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	end, err := cs.client.GetOffset(CheckpointTopic, 0, sarama.OffsetNewest)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	// Newest head first, reading windows back from the end.
	var head checkpointHead
	headAt := int64(-1)
	for hi := end; hi > oldest && headAt < 0; hi -= checkpointWindow {
		lo := max(oldest, hi-checkpointWindow)
		err := cs.read(ctx, lo, hi, func(m *sarama.ConsumerMessage) {
			var h checkpointHead
			if string(m.Key) == "head" && json.Unmarshal(m.Value, &h) == nil && h.ID != "" {
				head, headAt = h, m.Offset
			}
		})
		if err != nil {
			return nil, err
		}
	}
	if headAt < 0 {
		return nil, nil
	}
	// Its chunks come before it; with compaction other records may have
	// gone from between them, never the chunks of the newest checkpoint.
	chunks := make([][]byte, head.Chunks)
	found := 0
	prefix := head.ID + "/"
	for hi := headAt; hi > oldest && found < head.Chunks; hi -= int64(head.Chunks) + checkpointWindow {
		lo := max(oldest, hi-int64(head.Chunks)-checkpointWindow)
		err := cs.read(ctx, lo, hi, func(m *sarama.ConsumerMessage) {
			k, ok := strings.CutPrefix(string(m.Key), prefix)
			if !ok {
				return
			}
			if n, err := strconv.Atoi(k); err == nil && n >= 0 && n < len(chunks) && chunks[n] == nil {
				chunks[n] = m.Value
				found++
			}
		})
		if err != nil {
			return nil, err
		}
	}
	if found < head.Chunks {
		return nil, fmt.Errorf("checkpoint %s: %d of its %d chunks are missing", head.ID, head.Chunks-found, head.Chunks)
	}
	var out []byte
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out, nil
}

// read calls f for each record of [lo, hi).
func (cs *Checkpoints) read(ctx context.Context, lo, hi int64, f func(*sarama.ConsumerMessage)) error {
	pc, err := cs.reader.ConsumePartition(CheckpointTopic, 0, lo)
	if err != nil {
		return fmt.Errorf("read checkpoints from %d: %w", lo, err)
	}
	defer pc.Close()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case m := <-pc.Messages():
			if m.Offset >= hi {
				return nil
			}
			f(m)
			if m.Offset+1 >= hi {
				return nil
			}
		case err := <-pc.Errors():
			return fmt.Errorf("read checkpoints: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			return fmt.Errorf("read checkpoints: no record up to offset %d after 30 s", hi-1)
		}
	}
}
