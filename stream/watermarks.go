package stream

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// Watermarks reads the end offsets (high watermarks) of game-taps. It has a
// Kafka connection of its own: on the consumer's, a ListOffsets request
// would wait behind the fetch long-polls.
type Watermarks struct {
	client sarama.Client
}

// NewWatermarks connects to Kafka.
func NewWatermarks(c Config) (*Watermarks, error) {
	cfg, err := saramaConfig(c)
	if err != nil {
		return nil, err
	}
	cfg.ClientID += "-admin"
	client, err := sarama.NewClient(c.Brokers, cfg)
	if err != nil {
		return nil, c.Security.explain(c.Brokers, err)
	}
	return &Watermarks{client: client}, nil
}

// Close closes the connection.
func (w *Watermarks) Close() error {
	if err := w.client.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
		return fmt.Errorf("close kafka client: %w", err)
	}
	return nil
}

// HighWatermarks returns, for every partition of the topic, the offset the
// next record will get. Every record Kafka acknowledged before the call lies
// below it (with acks=all a record is acknowledged only once the high
// watermark passed it). The admin reset and import use it as the first
// offset of a new round; the admin page compares it with the applied
// offsets in Redis to show the lag of the whole group, whichever instance
// consumes a partition. Metadata is refreshed first, so that partitions
// added to the topic are not missed.
func (w *Watermarks) HighWatermarks(ctx context.Context) (map[int32]int64, error) {
	type result struct {
		m   map[int32]int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := w.read()
		done <- result{m, err}
	}()
	select {
	case r := <-done:
		return r.m, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("kafka end offsets: %w", ctx.Err())
	}
}

// read asks each partition leader once for the latest offsets of all its
// partitions of the topic.
func (w *Watermarks) read() (map[int32]int64, error) {
	if err := w.client.RefreshMetadata(Topic); err != nil {
		return nil, fmt.Errorf("kafka metadata of %s: %w", Topic, err)
	}
	parts, err := w.client.Partitions(Topic)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", Topic, err)
	}
	byLeader := map[*sarama.Broker][]int32{}
	for _, p := range parts {
		b, err := w.client.Leader(Topic, p)
		if err != nil {
			return nil, fmt.Errorf("leader of %s/%d: %w", Topic, p, err)
		}
		byLeader[b] = append(byLeader[b], p)
	}
	out := make(map[int32]int64, len(parts))
	for b, ps := range byLeader {
		req := sarama.NewOffsetRequest(w.client.Config().Version)
		for _, p := range ps {
			req.AddBlock(Topic, p, sarama.OffsetNewest, 1)
		}
		res, err := b.GetAvailableOffsets(req)
		if err != nil {
			return nil, fmt.Errorf("end offsets of %s from broker %d: %w", Topic, b.ID(), err)
		}
		for _, p := range ps {
			blk := res.GetBlock(Topic, p)
			if blk == nil {
				return nil, fmt.Errorf("end offset of %s/%d: no answer", Topic, p)
			}
			if blk.Err != sarama.ErrNoError {
				return nil, fmt.Errorf("end offset of %s/%d: %w", Topic, p, blk.Err)
			}
			if len(blk.Offsets) != 1 {
				return nil, fmt.Errorf("end offset of %s/%d: %d offsets in the answer", Topic, p, len(blk.Offsets))
			}
			out[p] = blk.Offsets[0]
		}
	}
	return out, nil
}
