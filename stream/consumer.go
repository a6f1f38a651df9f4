package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/metrics"
)

// Applier is the state the consumer writes to (store.Store in the app).
type Applier interface {
	Apply(ctx context.Context, b game.Batch) (game.ApplyResult, error)
	Offsets(ctx context.Context, topic string, partitions []int32) (map[int32]int64, error)
	RoundStart(ctx context.Context, topic string, partition int32) (int64, error)
	Notify(ctx context.Context) error
}

// ConsumerOptions tune the consumer; zero values take the defaults.
type ConsumerOptions struct {
	MaxBatch int // records per applied batch (default 5000)
	// BeforeApply, when set, runs before each attempt to apply a batch.
	// Tests use it to stop a consumer in the middle of a batch.
	BeforeApply func(game.Batch)
}

// Consumer is a member of the consumer group that applies taps to the store.
// It stores the offsets it applied in the store, atomically with the counts
// (Kafka's "storing offsets outside Kafka" pattern), and resumes from them.
type Consumer struct {
	cfg    Config
	client sarama.Client
	group  sarama.ConsumerGroup
	app    Applier
	log    *slog.Logger
	opt    ConsumerOptions

	stuck *stuckPartitions

	mu  sync.Mutex
	lag map[int32]int64
}

// NewConsumer joins the group cfg.Group (default "tapwars-applier").
func NewConsumer(c Config, app Applier, log *slog.Logger, opt ConsumerOptions) (*Consumer, error) {
	if c.Group == "" {
		c.Group = "tapwars-applier"
	}
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 5000
	}
	cfg, err := saramaConfig(c)
	if err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(c.Brokers, cfg)
	if err != nil {
		return nil, c.Security.explain(c.Brokers, err)
	}
	group, err := sarama.NewConsumerGroupFromClient(c.Group, client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("kafka consumer group %s: %w", c.Group, err)
	}
	return &Consumer{cfg: c, client: client, group: group, app: app, log: log, opt: opt, lag: map[int32]int64{},
		stuck: newStuckPartitions(log)}, nil
}

// Run consumes until ctx ends, rejoining the group after each rebalance and
// after errors.
func (c *Consumer) Run(ctx context.Context) error {
	go func() {
		for err := range c.group.Errors() {
			c.log.Warn("kafka consumer", "err", err)
		}
	}()
	h := &groupHandler{c: c}
	for ctx.Err() == nil {
		if err := c.group.Consume(ctx, []string{Topic}, h); err != nil {
			if errors.Is(err, sarama.ErrClosedConsumerGroup) {
				return nil
			}
			c.log.Warn("kafka consume, retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// Close leaves the group; a batch being applied is finished first.
func (c *Consumer) Close() error {
	err := c.group.Close()
	if cerr := c.client.Close(); cerr != nil && !errors.Is(cerr, sarama.ErrClosedClient) && err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close consumer: %w", err)
	}
	return nil
}

// Lag returns, per partition this instance consumes (its current claims),
// the records not yet applied as of the last fetch.
func (c *Consumer) Lag() map[int32]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int32]int64, len(c.lag))
	for p, l := range c.lag {
		out[p] = l
	}
	return out
}

func (c *Consumer) setLag(p int32, lag int64) {
	c.mu.Lock()
	c.lag[p] = lag
	c.mu.Unlock()
	metrics.ConsumerLag.WithLabelValues(fmt.Sprint(p)).Set(float64(lag))
}

type groupHandler struct{ c *Consumer }

// Setup moves every claimed partition to the offset stored in Redis, or to
// the oldest record when Redis has none (so a fresh Redis is rebuilt from
// the log).
func (h *groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	parts := sess.Claims()[Topic]
	offs, err := retry(sess.Context(), h.c.log, "read offsets", func(ctx context.Context) (map[int32]int64, error) {
		return h.c.app.Offsets(ctx, Topic, parts)
	})
	if err != nil {
		return err
	}
	for _, p := range parts {
		off, ok := offs[p]
		if !ok {
			off, err = h.c.client.GetOffset(Topic, p, sarama.OffsetOldest)
			if err != nil {
				return fmt.Errorf("oldest offset of %s/%d: %w", Topic, p, err)
			}
		}
		sess.ResetOffset(Topic, p, off, "")
		// Lag from the start, so the lag map and metric list every claimed
		// partition even before its first batch.
		var lag int64
		if hw, err := h.c.client.GetOffset(Topic, p, sarama.OffsetNewest); err == nil {
			lag = max(hw-off, 0)
		}
		h.c.setLag(p, lag)
		h.c.log.Debug("partition assigned", "partition", p, "offset", off, "lag", lag)
	}
	return nil
}

func (h *groupHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.c.mu.Lock()
	for _, p := range sess.Claims()[Topic] {
		delete(h.c.lag, p)
		metrics.ConsumerLag.DeleteLabelValues(fmt.Sprint(p))
	}
	h.c.mu.Unlock()
	for _, p := range sess.Claims()[Topic] {
		h.c.stuck.released(p)
	}
	return nil
}

// ConsumeClaim applies the partition's records in batches: it takes what is
// waiting (at most MaxBatch), applies it, and repeats. Under load batches
// grow by themselves while the previous one is applied. It returns as soon
// as the session ends.
func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx := sess.Context()
	p := claim.Partition()
	seen, err := retry(ctx, h.c.log, "read round start", func(ctx context.Context) (int64, error) {
		return h.c.app.RoundStart(ctx, Topic, p)
	})
	if err != nil {
		return nil // session over
	}
	msgs := make([]*sarama.ConsumerMessage, 0, h.c.opt.MaxBatch)
	for {
		msgs = msgs[:0]
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			msgs = append(msgs, m)
		case <-ctx.Done():
			return nil
		}
	drain:
		for len(msgs) < h.c.opt.MaxBatch {
			select {
			case m, ok := <-claim.Messages():
				if !ok {
					break drain
				}
				msgs = append(msgs, m)
			default:
				break drain
			}
		}
		if err := h.flush(ctx, sess, p, msgs, &seen); err != nil {
			return nil // session over; the next owner resumes from Redis
		}
		h.c.setLag(p, claim.HighWaterMarkOffset()-msgs[len(msgs)-1].Offset-1)
	}
}

// flush applies msgs (consecutive records of partition p) atomically with
// their offsets, retrying until it succeeds or the session ends.
func (h *groupHandler) flush(ctx context.Context, sess sarama.ConsumerGroupSession, p int32, msgs []*sarama.ConsumerMessage, seen *int64) error {
	from, next := msgs[0].Offset, msgs[len(msgs)-1].Offset+1
	backoff := 100 * time.Millisecond
	for {
		b, skipped := h.batch(p, msgs, from, next, *seen)
		if h.c.opt.BeforeApply != nil {
			h.c.opt.BeforeApply(b)
		}
		// A batch being applied is finished even when the session ends, so
		// shutdown records it; exactly-once never depends on that.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		start := time.Now()
		res, err := h.c.app.Apply(actx, b)
		cancel()
		if err != nil {
			metrics.ApplyErrors.Inc()
			h.c.stuck.failed(p, err, time.Now())
			h.c.log.Warn("apply batch failed, retrying", "partition", p, "from", from, "next", next, "backoff", backoff, "err", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		switch res.Status {
		case game.Overlap:
			h.c.log.Info("batch partly applied before, skipping the applied part", "partition", p, "from", from, "stored", res.Offset)
			from = res.Offset
			continue
		case game.NewRound:
			h.c.log.Info("new round started, skipping taps of the old round", "partition", p, "roundStart", res.RoundStart)
			*seen = res.RoundStart
			continue
		case game.Duplicate:
			metrics.DuplicateBatches.Inc()
		case game.Applied:
			metrics.ApplyLatency.Observe(time.Since(start).Seconds())
			metrics.BatchSize.Observe(float64(len(msgs)))
			metrics.TapsApplied.Add(float64(res.Applied))
			for reason, n := range skipped {
				metrics.TapsSkipped.WithLabelValues(reason).Add(float64(n))
			}
			if res.Unknown > 0 {
				metrics.TapsSkipped.WithLabelValues(SkipUnknown).Add(float64(res.Unknown))
			}
			if res.Applied > 0 {
				if err := h.c.app.Notify(ctx); err != nil {
					h.c.log.Warn("notify", "err", err)
				}
			}
		}
		h.c.stuck.applied(p)
		sess.MarkOffset(Topic, p, next, "")
		return nil
	}
}

// batch aggregates the valid taps of msgs[from:next) per player, skipping
// poison and taps of an earlier round, which it counts by reason.
func (h *groupHandler) batch(p int32, msgs []*sarama.ConsumerMessage, from, next, seen int64) (game.Batch, map[string]int) {
	b := game.Batch{Topic: Topic, Partition: p, From: from, Next: next, Seen: seen, Now: time.Now().UnixMilli()}
	skipped := map[string]int{}
	idx := make(map[string]int, len(msgs))
	for _, m := range msgs {
		if m.Offset < from {
			continue
		}
		ev, err := DecodeEvent(m.Value)
		if err != nil {
			var de *DecodeError
			reason := SkipMalformed
			if errors.As(err, &de) {
				reason = de.Reason
			}
			skipped[reason]++
			h.c.log.Debug("skipping poison record", "partition", p, "offset", m.Offset, "err", err)
			continue
		}
		if seen >= 0 && m.Offset < seen {
			skipped[SkipOldRound] += ev.Taps()
			continue
		}
		if i, ok := idx[ev.UserID]; ok {
			b.Taps[i].Count += int64(ev.Taps())
		} else {
			idx[ev.UserID] = len(b.Taps)
			b.Taps = append(b.Taps, game.PlayerTaps{UserID: ev.UserID, Count: int64(ev.Taps())})
		}
	}
	return b, skipped
}

// retry calls f until it succeeds or ctx ends, with backoff.
func retry[T any](ctx context.Context, log *slog.Logger, what string, f func(context.Context) (T, error)) (T, error) {
	backoff := 100 * time.Millisecond
	for {
		v, err := f(ctx)
		if err == nil {
			return v, nil
		}
		log.Warn(what+" failed, retrying", "backoff", backoff, "err", err)
		select {
		case <-ctx.Done():
			var zero T
			return zero, fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// Applying reports an error when a partition of this instance has failed
// to apply for longer than StuckAfter (for /readyz).
func (c *Consumer) Applying(context.Context) error { return c.stuck.check(time.Now()) }

// Ping checks that the brokers answer a metadata request for the topic.
func (c *Consumer) Ping(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- c.client.RefreshMetadata(Topic) }()
	select {
	case err := <-done:
		if err != nil {
			return c.cfg.Security.explain(c.cfg.Brokers, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka metadata: %w", ctx.Err())
	}
}
