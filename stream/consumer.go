package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/metrics"
)

// Applier is the state the consumer writes to (store.Store in the app).
type Applier interface {
	Apply(ctx context.Context, b game.Batch) (game.ApplyResult, error)
	Offsets(ctx context.Context, topic string, partitions []int32) (map[int32]int64, error)
}

// RoundReader is implemented by an Applier that keeps timed rounds
// (store.Store): the consumer counts a partition's taps with the schedule
// of the partition's round.
type RoundReader interface {
	PartitionSchedule(ctx context.Context, topic string, partition int32) (game.RoundSchedule, error)
}

// TopicKeeper is implemented by an Applier that ties its offsets to the
// topic's identity (store.Store): offsets of a deleted and recreated
// game-taps, or of another cluster's, mean nothing in this one.
type TopicKeeper interface {
	TopicID(ctx context.Context, topic string) (string, error)
	AdoptTopicID(ctx context.Context, topic, id string) error
	RebaseTopic(ctx context.Context, topic, oldID, newID string, starts map[int32]int64) (bool, error)
}

// knownSchedule is a partition's round schedule as the store holds it after
// the batches a claim (or a replay) applied, so that the next batch counts
// with it without reading it again. Only the apply script moves it, by the
// rule batch follows; anything but a batch applied as a whole from a stored
// offset forgets it, and the next batch reads it.
type knownSchedule struct {
	sc game.RoundSchedule
	ok bool
}

// ConsumerOptions tune the consumer; zero values take the defaults.
type ConsumerOptions struct {
	MaxBatch int // records per applied batch (default 5000)
	// CheckEvery is how often an idle partition checks that the store still
	// holds what was applied (default 1 s).
	CheckEvery time.Duration
	// Rebuilt, when set, is called when the last rebuild of this instance
	// ended (the app notifies the hubs, which then show the state again).
	Rebuilt func()
	// Restore, when set, loads the newest checkpoint into a store that holds
	// no offsets, before a partition is replayed from the log's start; the
	// replay then starts at the checkpoint's offsets.
	Restore func(ctx context.Context) error
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

	reader sarama.Consumer // replays partitions while their claim waits (catchUp)
	joined atomic.Bool     // a group session started: its partitions' state is known

	mu     sync.Mutex
	lag    map[int32]int64
	oldest map[int32]int64 // first offset Kafka keeps, per partition
	// resumed is the offset the store held for a partition when this
	// session claimed it: an idle claim checks the store still holds it.
	resumed    map[int32]int64
	rebuilding map[int32]rebuild
}

// rebuild is a partition being replayed into a store that lost it (or that
// started empty): at is how far the replay got, upTo where it ends.
type rebuild struct{ at, upTo int64 }

// NewConsumer joins the group cfg.Group (default "tapwars-applier").
func NewConsumer(c Config, app Applier, log *slog.Logger, opt ConsumerOptions) (*Consumer, error) {
	if c.Group == "" {
		c.Group = "tapwars-applier"
	}
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 5000
	}
	if opt.CheckEvery <= 0 {
		opt.CheckEvery = time.Second
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
	reader, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		_ = group.Close()
		_ = client.Close()
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	return &Consumer{cfg: c, client: client, group: group, reader: reader, app: app, log: log, opt: opt,
		lag: map[int32]int64{}, oldest: map[int32]int64{}, resumed: map[int32]int64{}, rebuilding: map[int32]rebuild{}, stuck: newStuckPartitions(log)}, nil
}

// Run consumes until ctx ends, rejoining the group after each rebalance and
// after errors.
func (c *Consumer) Run(ctx context.Context) error {
	go func() {
		for err := range c.group.Errors() {
			c.log.Warn("kafka consumer", "err", err)
		}
	}()
	for ctx.Err() == nil {
		// A claim whose partition consumer stopped (its offset is out of
		// range: the topic was recreated) ends the session, so Setup runs
		// again.
		sctx, rejoin := context.WithCancel(ctx)
		h := &groupHandler{c: c, rejoin: rejoin}
		err := c.group.Consume(sctx, []string{Topic}, h)
		rejoin()
		if err != nil {
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
	if rerr := c.reader.Close(); rerr != nil && err == nil {
		err = rerr
	}
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
	return maps.Clone(c.lag)
}

func (c *Consumer) setLag(p int32, lag int64) {
	c.mu.Lock()
	c.lag[p] = lag
	c.mu.Unlock()
	metrics.ConsumerLag.WithLabelValues(fmt.Sprint(p)).Set(float64(lag))
}

type groupHandler struct {
	c      *Consumer
	rejoin context.CancelFunc // ends the session
	// topicID is game-taps' id as Setup saw it ("" if unknown): recorded
	// beside the offsets after a claim's first batch.
	topicID string
	// stale is set when game-taps went away or changed its id during the
	// session: its claims apply nothing more (they may be reading the new
	// topic at the old one's offsets) and the group is joined again.
	stale atomic.Bool
}

// topicWatch is how often a session checks that game-taps is still the
// topic it started on. sarama waits Consumer.Retry.Backoff (2 s) before
// fetching again after the topic went away, so a recreated topic is
// noticed before its records are fetched at the old offsets.
const topicWatch = time.Second

// watchTopic ends the session when game-taps is deleted or gets another id.
func (h *groupHandler) watchTopic(ctx context.Context, id string) {
	t := time.NewTicker(topicWatch)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur, err := topicIdentity(h.c.client)
		if errors.Is(err, sarama.ErrUnknownTopicOrPartition) || (err == nil && cur.ID != id) {
			h.stale.Store(true)
			h.c.log.Warn("game-taps was deleted or recreated: its partitions apply nothing more until the group is joined again", "id", id, "now", cur.ID, "err", err)
			h.rejoin()
			return
		}
	}
}

// Setup moves every claimed partition to the offset stored in Redis, or to
// the oldest record when Redis has none (so a fresh Redis is rebuilt from
// the log).
func (h *groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	parts := sess.Claims()[Topic]
	var err error
	if h.topicID, err = h.c.checkTopic(sess.Context()); err != nil {
		return err
	}
	if h.topicID != "" {
		go h.watchTopic(sess.Context(), h.topicID)
	}
	offs, restored, err := h.c.storedOffsets(sess.Context(), parts)
	if err != nil {
		return err
	}
	if restored { // the checkpoint's offsets may be of another topic
		if h.topicID, err = h.c.checkTopic(sess.Context()); err != nil {
			return err
		}
		if offs, err = h.c.app.Offsets(sess.Context(), Topic, parts); err != nil {
			return err
		}
	}
	for _, p := range parts {
		oldest, err := h.c.client.GetOffset(Topic, p, sarama.OffsetOldest)
		if err != nil {
			return fmt.Errorf("oldest offset of %s/%d: %w", Topic, p, err)
		}
		h.c.setOldest(p, oldest)
		off, ok := offs[p]
		if !ok || off < oldest {
			off = oldest
		}
		sess.ResetOffset(Topic, p, off, "")
		h.c.mu.Lock()
		delete(h.c.resumed, p)
		if ok && !restored && off > oldest {
			h.c.resumed[p] = off
		}
		h.c.mu.Unlock()
		// Lag from the start, so the lag map and metric list every claimed
		// partition even before its first batch.
		var lag int64
		if hw, err := h.c.client.GetOffset(Topic, p, sarama.OffsetNewest); err == nil {
			lag = max(hw-off, 0)
			if (!ok || restored) && hw > off {
				h.c.startRebuild(p, hw) // a store without this partition (or just given a checkpoint): rebuilding from the log
			}
		}
		h.c.setLag(p, lag)
		h.c.log.Debug("partition assigned", "partition", p, "offset", off, "lag", lag)
	}
	h.c.joined.Store(true)
	return nil
}

func (h *groupHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.c.mu.Lock()
	for _, p := range sess.Claims()[Topic] {
		delete(h.c.lag, p)
		delete(h.c.rebuilding, p)
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
// grow by themselves while the previous one is applied. After CheckEvery
// without a batch it also checks that the store still holds what was applied
// (a FLUSHALL or a Redis restarted without its data while no taps flow) and
// replays the log if not. It returns as soon as the session ends.
func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx := sess.Context()
	p := claim.Partition()
	check := time.NewTicker(h.c.opt.CheckEvery)
	defer check.Stop()
	// applied is the offset after the last record this claim applied, or
	// the one the store held when the claim started: a store that loses it
	// while no taps flow (FLUSHALL just after a restart) is noticed too.
	applied := int64(-1)
	h.c.mu.Lock()
	if off, ok := h.c.resumed[p]; ok {
		applied = off
	}
	h.c.mu.Unlock()
	msgs := make([]*sarama.ConsumerMessage, 0, h.c.opt.MaxBatch)
	var known knownSchedule
	for {
		msgs = msgs[:0]
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				if ctx.Err() == nil {
					h.c.log.Warn("the partition's consumer stopped (was game-taps deleted or recreated?): joining the group again", "partition", p)
					h.rejoin()
				}
				return nil
			}
			msgs = append(msgs, m)
		case <-check.C:
			known = knownSchedule{} // the check may rebuild the partition
			if applied >= 0 {
				if err := h.verify(ctx, p, applied); err != nil {
					return nil // session over
				}
			}
			continue
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
		if h.stale.Load() {
			return nil // the topic changed: Setup moves the offsets first
		}
		if err := h.flush(ctx, p, msgs, &known); err != nil {
			return nil // session over; the next owner resumes from Redis
		}
		if tk, ok := h.c.app.(TopicKeeper); ok && h.topicID != "" && applied < 0 {
			_ = tk.AdoptTopicID(ctx, Topic, h.topicID) // a store's first offsets: the next Setup retries
		}
		check.Reset(h.c.opt.CheckEvery) // the check runs only after a quiet CheckEvery
		applied = msgs[len(msgs)-1].Offset + 1
		sess.MarkOffset(Topic, p, applied, "")
		h.c.setLag(p, claim.HighWaterMarkOffset()-applied)
		h.c.caughtUp(p, applied)
	}
}

// verify replays the log into the store if the store no longer holds the
// partition up to applied (the offset after what this consumer applied).
func (h *groupHandler) verify(ctx context.Context, p int32, applied int64) error {
	offs, err := h.c.app.Offsets(ctx, Topic, []int32{p})
	if err != nil {
		return nil // Redis down: the next check or batch retries
	}
	if off, ok := offs[p]; ok && off >= applied {
		return nil
	}
	h.c.log.Warn("the store lost applied records of a partition: rebuilding it from the log", "partition", p, "stored", offs[p], "applied", applied)
	return h.catchUp(ctx, p, applied)
}

// flush applies msgs (consecutive records of partition p) atomically with
// their offsets, retrying until it succeeds or the session ends. When the
// store lacks the records before them, it replays those first.
func (h *groupHandler) flush(ctx context.Context, p int32, msgs []*sarama.ConsumerMessage, known *knownSchedule) error {
	for {
		behind, err := h.apply(ctx, p, msgs, known)
		if err != nil || !behind {
			return err
		}
		h.c.log.Warn("the store is behind the log: rebuilding the partition from the log", "partition", p, "upTo", msgs[0].Offset)
		if err := h.catchUp(ctx, p, msgs[0].Offset); err != nil {
			return err
		}
	}
}

// apply applies msgs once (retrying store errors); behind reports that the
// store lacks records before them, and nothing was applied. known is the
// partition's schedule when the last batch was applied (see knownSchedule).
func (h *groupHandler) apply(ctx context.Context, p int32, msgs []*sarama.ConsumerMessage, known *knownSchedule) (behind bool, err error) {
	from, next := msgs[0].Offset, msgs[len(msgs)-1].Offset+1
	var bo backoff
	// failed counts a failed attempt and waits before the next; false when
	// the session ended meanwhile.
	failed := func(what string, err error) bool {
		metrics.ApplyErrors.Inc()
		h.c.stuck.failed(p, err, time.Now())
		h.c.log.Warn(what+" failed, retrying", "partition", p, "from", from, "next", next, "backoff", bo.delay(), "err", err)
		return bo.wait(ctx)
	}
	rr, rounds := h.c.app.(RoundReader)
	for {
		sched := known.sc
		if rounds && !known.ok {
			var err error
			if sched, err = rr.PartitionSchedule(ctx, Topic, p); err != nil {
				// the batch cannot be applied without it: an apply error
				if !failed("read round schedule", err) {
					return false, ctx.Err()
				}
				continue
			}
		}
		*known = knownSchedule{}
		b, skipped, after := h.batch(p, msgs, from, next, sched)
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
			if !failed("apply batch", err) {
				return false, ctx.Err()
			}
			continue
		}
		switch res.Status {
		case game.Overlap:
			h.c.log.Info("batch partly applied before, skipping the applied part", "partition", p, "from", from, "stored", res.Offset)
			from = res.Offset
			continue
		case game.Behind:
			return true, nil
		case game.Duplicate:
			metrics.DuplicateBatches.Inc()
		case game.Applied:
			if rounds && !b.Start { // (from the log's start the script resets the partition's rounds)
				*known = knownSchedule{sc: after, ok: true}
			}
			metrics.ApplyLatency.Observe(time.Since(start).Seconds())
			metrics.BatchSize.Observe(float64(len(msgs)))
			metrics.TapsApplied.Add(float64(res.Applied))
			for reason, n := range skipped {
				metrics.TapsSkipped.WithLabelValues(reason).Add(float64(n))
			}
			if res.Unknown > 0 {
				metrics.TapsSkipped.WithLabelValues(SkipUnknown).Add(float64(res.Unknown))
			}
			if res.OldRound > 0 {
				metrics.TapsSkipped.WithLabelValues(SkipOldRound).Add(float64(res.OldRound))
			}
		}
		h.c.stuck.applied(p)
		return false, nil
	}
}

// catchUp replays partition p from what the store holds (or the start of
// the log) up to upTo, with a partition consumer of its own, while the
// claim waits. It starts over if the store loses records again meanwhile.
func (h *groupHandler) catchUp(ctx context.Context, p int32, upTo int64) error {
	h.c.startRebuild(p, upTo)
	defer h.c.caughtUp(p, upTo)
	for {
		start, err := h.replayStart(ctx, p)
		if err != nil {
			return err
		}
		if start >= upTo {
			return nil
		}
		behind, err := h.replay(ctx, p, start, upTo)
		if err != nil || !behind {
			return err
		}
	}
}

// replayStart is where a replay of p begins: the store's offset, or the
// oldest record Kafka keeps when the store has none (or an older one).
func (h *groupHandler) replayStart(ctx context.Context, p int32) (int64, error) {
	oldest, err := retry(ctx, h.c.log, "read oldest offset", func(context.Context) (int64, error) {
		return h.c.client.GetOffset(Topic, p, sarama.OffsetOldest)
	})
	if err != nil {
		return 0, err
	}
	h.c.setOldest(p, oldest)
	offs, _, err := h.c.storedOffsets(ctx, []int32{p})
	if err != nil {
		return 0, err
	}
	if off, ok := offs[p]; ok && off >= oldest {
		return off, nil
	}
	if len(offs) > 0 {
		h.c.log.Error("records the store never applied were deleted by Kafka's retention: they are lost", "partition", p, "stored", offs[p], "oldest", oldest)
	}
	return oldest, nil
}

// replay applies [start, upTo) of p; behind reports that the store lost
// records meanwhile.
func (h *groupHandler) replay(ctx context.Context, p int32, start, upTo int64) (behind bool, err error) {
	pc, err := h.c.reader.ConsumePartition(Topic, p, start)
	if err != nil {
		return false, fmt.Errorf("replay %s/%d from %d: %w", Topic, p, start, err)
	}
	defer pc.Close()
	msgs := make([]*sarama.ConsumerMessage, 0, h.c.opt.MaxBatch)
	var known knownSchedule
	for next := start; next < upTo; {
		msgs = msgs[:0]
		select {
		case m := <-pc.Messages():
			msgs = append(msgs, m)
		case err := <-pc.Errors():
			return false, fmt.Errorf("replay %s/%d: %w", Topic, p, err)
		case <-ctx.Done():
			return false, ctx.Err()
		}
	drain:
		for len(msgs) < h.c.opt.MaxBatch && msgs[len(msgs)-1].Offset+1 < upTo {
			select {
			case m := <-pc.Messages():
				msgs = append(msgs, m)
			default:
				break drain
			}
		}
		for len(msgs) > 0 && msgs[len(msgs)-1].Offset >= upTo {
			msgs = msgs[:len(msgs)-1] // the claim delivers these
		}
		if len(msgs) == 0 {
			return false, nil
		}
		if behind, err := h.apply(ctx, p, msgs, &known); err != nil || behind {
			return behind, err
		}
		next = msgs[len(msgs)-1].Offset + 1
		h.c.caughtUp(p, next)
	}
	return false, nil
}

// batch turns msgs[from:next) into steps: runs of taps aggregated per
// player, and facts in between, in log order. Poison records are skipped
// and counted by reason. sched is the schedule of the partition's round at
// from: a timed round's taps count only inside it (game.RoundSchedule.Counts),
// the same rule the tap handler answered them by. after is the schedule at
// next, past the batch's round markers.
func (h *groupHandler) batch(p int32, msgs []*sarama.ConsumerMessage, from, next int64, sched game.RoundSchedule) (b game.Batch, skipped map[string]int, after game.RoundSchedule) {
	b = game.Batch{Topic: Topic, Partition: p, From: from, Next: next, Start: from <= h.c.oldestOf(p), Now: time.Now().UnixMilli()}
	skipped = map[string]int{}
	skip := func(m *sarama.ConsumerMessage, err error) {
		var de *DecodeError
		reason := SkipMalformed
		if errors.As(err, &de) {
			reason = de.Reason
		}
		skipped[reason]++
		h.c.log.Debug("skipping poison record", "partition", p, "offset", m.Offset, "err", err)
	}
	var run []game.PlayerTaps
	idx := map[string]int{}
	endRun := func() {
		if len(run) > 0 {
			b.Steps = append(b.Steps, game.Step{Taps: run})
			run, idx = nil, map[string]int{}
		}
	}
	for _, m := range msgs {
		if m.Offset < from {
			continue
		}
		if !isFact(m) {
			ev, err := DecodeEvent(m.Value)
			if err == nil && !sched.Counts(ev.Timestamp) {
				skipped[SkipOffRound] += ev.Taps()
				continue
			}
			if err == nil {
				if i, ok := idx[ev.UserID]; ok {
					run[i].Count += int64(ev.Taps())
				} else {
					idx[ev.UserID] = len(run)
					run = append(run, game.PlayerTaps{UserID: ev.UserID, Count: int64(ev.Taps())})
				}
				continue
			}
			if !errors.Is(err, errIsFact) {
				skip(m, err)
				continue
			}
		}
		f, err := DecodeFact(m.Value)
		if err != nil {
			skip(m, err)
			continue
		}
		if (f.Type == game.FactRound || f.Type == game.FactImport) && f.Round > sched.Number {
			// the apply script moves the partition to this round too
			sched = game.RoundSchedule{Number: f.Round, Mode: game.ModeOpen}
			if f.Schedule != nil {
				sched = *f.Schedule
			}
		}
		endRun()
		b.Steps = append(b.Steps, game.Step{Fact: &f, Offset: m.Offset})
	}
	endRun()
	return b, skipped, sched
}

// isFact reports whether a record carries a fact's type header.
func isFact(m *sarama.ConsumerMessage) bool {
	for _, h := range m.Headers {
		if h != nil && string(h.Key) == TypeHeader && len(h.Value) > 0 {
			return true
		}
	}
	return false
}

// storedOffsets reads the store's offsets of parts; when some are missing it
// first loads the newest checkpoint (if the store holds no offsets at all),
// and reports that it tried (restored).
func (c *Consumer) storedOffsets(ctx context.Context, parts []int32) (offs map[int32]int64, restored bool, err error) {
	read := func() (map[int32]int64, error) {
		return retry(ctx, c.log, "read offsets", func(ctx context.Context) (map[int32]int64, error) {
			return c.app.Offsets(ctx, Topic, parts)
		})
	}
	offs, err = read()
	if err != nil || len(offs) == len(parts) || c.opt.Restore == nil {
		return offs, false, err
	}
	if _, err := retry(ctx, c.log, "load checkpoint", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, c.opt.Restore(ctx)
	}); err != nil {
		return nil, false, err
	}
	offs, err = read()
	return offs, true, err
}

// backoff spaces retries: 100 ms after the first failure, doubling up to
// 5 s. The zero value is ready to use.
type backoff struct{ d time.Duration }

// delay is how long the next wait lasts.
func (b *backoff) delay() time.Duration {
	if b.d == 0 {
		return 100 * time.Millisecond
	}
	return b.d
}

// wait sleeps for delay and doubles it; false when ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	d := b.delay()
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
	}
	b.d = min(d*2, 5*time.Second)
	return true
}

// retry calls f until it succeeds or ctx ends, with backoff.
func retry[T any](ctx context.Context, log *slog.Logger, what string, f func(context.Context) (T, error)) (T, error) {
	var bo backoff
	for {
		v, err := f(ctx)
		if err == nil {
			return v, nil
		}
		log.Warn(what+" failed, retrying", "backoff", bo.delay(), "err", err)
		if !bo.wait(ctx) {
			var zero T
			return zero, fmt.Errorf("%s: %w", what, ctx.Err())
		}
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

func (c *Consumer) setOldest(p int32, off int64) {
	c.mu.Lock()
	c.oldest[p] = off
	c.mu.Unlock()
}

func (c *Consumer) oldestOf(p int32) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if off, ok := c.oldest[p]; ok {
		return off
	}
	return 0
}

func (c *Consumer) startRebuild(p int32, upTo int64) {
	c.mu.Lock()
	if r, ok := c.rebuilding[p]; !ok || r.upTo < upTo {
		c.rebuilding[p] = rebuild{upTo: upTo}
	}
	c.mu.Unlock()
	metrics.Rebuilding.Set(1)
}

// caughtUp records that the store holds p up to applied, and ends p's
// rebuild once that reaches its end.
func (c *Consumer) caughtUp(p int32, applied int64) {
	c.mu.Lock()
	ended := false
	if r, ok := c.rebuilding[p]; ok && applied >= r.upTo {
		delete(c.rebuilding, p)
		ended = len(c.rebuilding) == 0
	} else if ok {
		r.at = max(r.at, applied)
		c.rebuilding[p] = r
	}
	n := len(c.rebuilding)
	c.mu.Unlock()
	if n == 0 {
		metrics.Rebuilding.Set(0)
	}
	if ended && c.opt.Rebuilt != nil {
		c.opt.Rebuilt()
	}
}

// Rebuilding returns, per partition this instance is replaying into a store
// that lost it (or started empty), the records still to replay.
func (c *Consumer) Rebuilding() map[int32]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int32]int64, len(c.rebuilding))
	for p, r := range c.rebuilding {
		out[p] = max(r.upTo-r.at, 0)
	}
	return out
}

// CatchingUp reports whether a rebuild from the log runs (a start that does
// not know yet, before the group join, does not count: pages would flash).
func (c *Consumer) CatchingUp() bool { return len(c.Rebuilding()) > 0 }

// Ready is /readyz's check of the projection: an error before the consumer
// joined its group and while a rebuild runs.
func (c *Consumer) Ready(context.Context) error {
	if !c.joined.Load() {
		return game.Errorf(game.EUNAVAILABLE, "starting: the consumer has not joined its group yet")
	}
	left := c.Rebuilding()
	if len(left) == 0 {
		return nil
	}
	var n int64
	for _, l := range left {
		n += l
	}
	return game.Errorf(game.EUNAVAILABLE, "rebuilding: replaying the log into Redis (%d partitions, about %d records to go)", len(left), n)
}

// checkTopic ties the store's offsets to game-taps' topic id: offsets kept
// before ids were are adopted; offsets of another topic (game-taps deleted
// and recreated, or another cluster) are moved to this one, whose
// partitions are then read from their start in the current round. The
// state in Redis goes on; records of the old topic it had not applied are
// gone with that topic, and this log alone no longer rebuilds the players
// who joined before (the next checkpoint covers them).
// It returns game-taps' id ("" when unknown).
func (c *Consumer) checkTopic(ctx context.Context) (string, error) {
	tk, ok := c.app.(TopicKeeper)
	if !ok {
		return "", nil
	}
	cur, err := topicIdentity(c.client)
	if err != nil || cur.ID == "" {
		return "", err // no topic (it comes back) or a broker without topic ids
	}
	stored, err := tk.TopicID(ctx, Topic)
	if err != nil || stored == cur.ID {
		return cur.ID, err
	}
	if stored == "" {
		return cur.ID, tk.AdoptTopicID(ctx, Topic, cur.ID)
	}
	parts, err := c.client.Partitions(Topic)
	if err != nil {
		return "", fmt.Errorf("partitions of %s: %w", Topic, err)
	}
	starts := make(map[int32]int64, len(parts))
	for _, p := range parts {
		if starts[p], err = c.client.GetOffset(Topic, p, sarama.OffsetOldest); err != nil {
			return "", fmt.Errorf("oldest offset of %s/%d: %w", Topic, p, err)
		}
	}
	moved, err := tk.RebaseTopic(ctx, Topic, stored, cur.ID, starts)
	if err != nil {
		return "", err
	}
	if moved {
		metrics.TopicRebases.Inc()
		c.log.Error("game-taps is not the topic Redis's offsets belong to: it was deleted and recreated, or this is another Kafka cluster. "+
			"The game goes on from the state in Redis, reading the new topic from its start; records of the old topic not applied yet are lost with it, "+
			"and until the next checkpoint a rebuild from this log alone lacks the players who joined before",
			"topic", Topic, "id", cur.ID, "storedID", stored, "cluster", cur.Cluster)
	}
	return cur.ID, nil
}
