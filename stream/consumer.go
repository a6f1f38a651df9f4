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

// Repairer is implemented by an Applier that can tell when keys were
// deleted under it and drop what is left (store.Store): the consumer then
// rebuilds it from the log.
type Repairer interface {
	Consistent(ctx context.Context, unknownTaps bool) (bool, error)
	DropProjection(ctx context.Context) error
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
// with it without reading it again. Only the apply script moves it, and it
// returns where it left it (game.ApplyResult.Schedule); anything but a
// batch applied forgets it, and the next batch reads it.
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

	stuck    *stuckPartitions
	problems *problems

	reader sarama.Consumer // replays partitions while their claim waits (catchUp)
	joined atomic.Bool     // a group session started: its partitions' state is known
	// One repair at a time (repairIfLost): repairing is set from the drop
	// until the rebuilds end. repairs are the recent ones' times: a third
	// within repairWindow means the log itself leads there, and noRepair
	// stops them.
	repairMu  sync.Mutex
	repairing atomic.Bool
	repairs   []time.Time
	noRepair  atomic.Bool

	mu     sync.Mutex
	lag    map[int32]int64
	oldest map[int32]int64 // first offset Kafka keeps, per partition
	// resumed is the offset the store held for a partition when this
	// session claimed it: an idle claim checks the store still holds it.
	resumed map[int32]int64
	// started is where this session's claim of a partition starts: its
	// first batch covers the offsets from there, records or not.
	started    map[int32]int64
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
		lag: map[int32]int64{}, oldest: map[int32]int64{}, resumed: map[int32]int64{}, started: map[int32]int64{}, rebuilding: map[int32]rebuild{}, stuck: newStuckPartitions(log),
		problems: newProblems(log)}, nil
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
		if ok && off < oldest {
			h.c.problems.reportDeleted(p, off, oldest)
		} else if !ok && oldest > 0 {
			h.c.problems.reportDeleted(p, -1, oldest)
		}
		if !ok || off < oldest {
			off = oldest
		}
		sess.ResetOffset(Topic, p, off, "")
		h.c.mu.Lock()
		delete(h.c.resumed, p)
		h.c.started[p] = off
		if ok && !restored && off > oldest {
			h.c.resumed[p] = off
		}
		h.c.mu.Unlock()
		// Lag from the start, so the lag map and metric list every claimed
		// partition even before its first batch.
		var lag int64
		if hw, err := h.c.client.GetOffset(Topic, p, sarama.OffsetNewest); err == nil {
			if ok && off > hw {
				h.c.problems.reportPastEnd(p, off, hw)
			}
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
	// pos is the offset after the last one this claim was given (records
	// or not): offsets that carry no record for this consumer (transaction
	// markers, aborted records, compacted ones) lie between two records,
	// and the next batch covers them, so the store's offset moves past them.
	pos := int64(-1)
	h.c.mu.Lock()
	if off, ok := h.c.resumed[p]; ok {
		applied = off
	}
	if off, ok := h.c.started[p]; ok {
		pos = off
	}
	h.c.mu.Unlock()
	if h.c.problems.isPastEnd(p) {
		if !h.waitPastEnd(ctx, p) {
			return nil
		}
		applied, pos = -1, -1 // the claim starts where Kafka put it
	}
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
			if pos >= 0 && pos < claim.HighWaterMarkOffset() {
				// Nothing came for a while, yet the log goes on: markers?
				if to, err := h.c.recordless(p, pos); err == nil && to > pos {
					behind, _, err := h.apply(ctx, p, pos, to, nil, &known)
					if err != nil {
						return nil // session over
					}
					if !behind { // (else the store lost records: verify rebuilds)
						pos, applied = to, to
						sess.MarkOffset(Topic, p, to, "")
						h.c.setLag(p, claim.HighWaterMarkOffset()-to)
						h.c.caughtUp(p, to)
					}
				}
			}
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
		from := msgs[0].Offset
		if pos >= 0 && pos < from {
			from = pos
		}
		if err := h.flush(ctx, p, from, msgs, &known); err != nil {
			return nil // session over; the next owner resumes from Redis
		}
		if tk, ok := h.c.app.(TopicKeeper); ok && h.topicID != "" && applied < 0 {
			_ = tk.AdoptTopicID(ctx, Topic, h.topicID) // a store's first offsets: the next Setup retries
		}
		check.Reset(h.c.opt.CheckEvery) // the check runs only after a quiet CheckEvery
		applied = msgs[len(msgs)-1].Offset + 1
		pos = applied
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
		return h.repairIfLost(ctx, p, applied, 0)
	}
	h.c.log.Warn("the store lost applied records of a partition: rebuilding it from the log", "partition", p, "stored", offs[p], "applied", applied)
	return h.catchUp(ctx, p, applied)
}

// repairIfLost rebuilds the store from the log when game keys were deleted
// under it (see Repairer), found by the idle check or by a batch with
// unknown taps of unknown players. A rebuild that leaves the store as it
// was means the log itself leads there: it is not repeated.
func (h *groupHandler) repairIfLost(ctx context.Context, p int32, next, unknown int64) error {
	r, ok := h.c.app.(Repairer)
	if !ok || h.c.noRepair.Load() || h.c.repairing.Load() || h.c.CatchingUp() {
		return nil // a rebuild runs: the store is checked once it ended
	}
	h.c.repairMu.Lock()
	if h.c.repairing.Load() || h.c.CatchingUp() {
		h.c.repairMu.Unlock()
		return nil
	}
	if good, err := r.Consistent(ctx, unknown > 0); err != nil || good {
		h.c.repairMu.Unlock()
		return nil
	}
	now := time.Now()
	recent := h.c.repairs[:0]
	for _, at := range h.c.repairs {
		if now.Sub(at) < repairWindow {
			recent = append(recent, at)
		}
	}
	h.c.repairs = append(recent, now)
	if len(h.c.repairs) > maxRepairs {
		h.c.noRepair.Store(true)
		h.c.repairMu.Unlock()
		h.c.problems.report(metrics.ProblemInconsistent, "the store is inconsistent again right after rebuilds from the log (the log itself leads there): not rebuilding for it again until a restart",
			"rebuilds", maxRepairs, "within", repairWindow)
		return nil
	}
	h.c.repairing.Store(true)
	h.c.repairMu.Unlock()
	return h.repair(ctx, p, next, r, unknown)
}

// At most maxRepairs repairs within repairWindow (see repairIfLost).
const (
	maxRepairs   = 2
	repairWindow = time.Minute
)

// repair drops the projection, whose keys were deleted under it (the
// store does not know players the log holds), and rebuilds it from the
// log up to next; the other partitions notice the dropped offsets and
// rebuild too. A tap answered 2xx is never dropped as "unknown player".
func (h *groupHandler) repair(ctx context.Context, p int32, next int64, r Repairer, unknown int64) error {
	h.c.problems.report(metrics.ProblemInconsistent, "the store lost game keys under it (e.g. DEL game:users): rebuilding it from the log; use the admin reset to start a new round",
		"partition", p, "unknownTaps", unknown)
	h.c.startRebuild(p, next)
	if _, err := retry(ctx, h.c.log, "drop the projection", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, r.DropProjection(ctx)
	}); err != nil {
		return err
	}
	return h.catchUp(ctx, p, next)
}

// flush applies msgs (consecutive records of partition p, the offsets from
// from on) atomically with their offsets, retrying until it succeeds or the
// session ends. When the store lacks the records before them, it replays
// those first.
func (h *groupHandler) flush(ctx context.Context, p int32, from int64, msgs []*sarama.ConsumerMessage, known *knownSchedule) error {
	for {
		next := msgs[len(msgs)-1].Offset + 1
		behind, unknown, err := h.apply(ctx, p, from, next, msgs, known)
		if err == nil && unknown > 0 {
			*known = knownSchedule{} // a rebuild may run
			return h.repairIfLost(ctx, p, next, unknown)
		}
		if err != nil || !behind {
			return err
		}
		h.c.log.Warn("the store is behind the log: rebuilding the partition from the log", "partition", p, "upTo", from)
		if err := h.catchUp(ctx, p, from); err != nil {
			return err
		}
	}
}

// apply applies the offsets [from, next) of p, whose records are msgs (none
// when the offsets carry no record), once (retrying store errors); behind
// reports that the store lacks records before them, and nothing was
// applied. known is the partition's schedule when the last batch was
// applied (see knownSchedule).
//
// unknown is the number of taps of players the store does not know (nor
// kicked): applied live, they mean keys were deleted under the store.
func (h *groupHandler) apply(ctx context.Context, p int32, from, next int64, msgs []*sarama.ConsumerMessage, known *knownSchedule) (behind bool, unknown int64, err error) {
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
					return false, 0, ctx.Err()
				}
				continue
			}
		}
		*known = knownSchedule{}
		b, skipped := h.batch(p, msgs, from, next, sched)
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
				return false, 0, ctx.Err()
			}
			continue
		}
		switch res.Status {
		case game.Overlap:
			h.c.log.Info("batch partly applied before, skipping the applied part", "partition", p, "from", from, "stored", res.Offset)
			from = res.Offset
			continue
		case game.Behind:
			return true, 0, nil
		case game.Duplicate:
			metrics.DuplicateBatches.Inc()
		case game.Applied:
			if rounds && res.Schedule != nil {
				*known = knownSchedule{sc: *res.Schedule, ok: true}
			}
			metrics.ApplyLatency.Observe(time.Since(start).Seconds())
			if len(msgs) > 0 {
				metrics.BatchSize.Observe(float64(len(msgs)))
			}
			metrics.TapsApplied.Add(float64(res.Applied))
			for reason, n := range skipped {
				metrics.TapsSkipped.WithLabelValues(reason).Add(float64(n))
			}
			if res.Unknown > 0 {
				metrics.TapsSkipped.WithLabelValues(SkipUnknown).Add(float64(res.Unknown))
			}
			if res.Kicked > 0 {
				metrics.TapsSkipped.WithLabelValues(SkipKicked).Add(float64(res.Kicked))
			}
			if res.OldRound > 0 {
				metrics.TapsSkipped.WithLabelValues(SkipOldRound).Add(float64(res.OldRound))
			}
		}
		h.c.stuck.applied(p)
		return false, res.Unknown, nil
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
	off, ok := offs[p]
	if ok && off >= oldest {
		return off, nil
	}
	if ok {
		h.c.problems.reportDeleted(p, off, oldest)
	} else if oldest > 0 {
		h.c.problems.reportDeleted(p, -1, oldest)
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
	// next is the offset after the last one read, records or not (see pos
	// in ConsumeClaim).
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
		end := msgs[len(msgs)-1].Offset + 1
		for len(msgs) > 0 && msgs[len(msgs)-1].Offset >= upTo {
			msgs = msgs[:len(msgs)-1] // the claim delivers these
			end = upTo                // and no record lies between
		}
		// (unknown players in a replay are the log's own: skipped, counted)
		if behind, _, err := h.apply(ctx, p, next, end, msgs, &known); err != nil || behind {
			return behind, err
		}
		next = end
		h.c.caughtUp(p, next)
	}
	return false, nil
}

// batch turns msgs[from:next) into steps: runs of taps aggregated per
// player, and facts in between, in log order. Poison records are skipped
// and counted by reason. sched is the schedule of the partition's round at
// from: a timed round's taps count only inside it (game.RoundSchedule.Counts),
// the same rule the tap handler answered them by; a round marker ahead of
// it moves it, as the apply script moves the partition.
func (h *groupHandler) batch(p int32, msgs []*sarama.ConsumerMessage, from, next int64, sched game.RoundSchedule) (b game.Batch, skipped map[string]int) {
	b = game.Batch{Topic: Topic, Partition: p, From: from, Next: next, Start: from <= h.c.oldestOf(p), Now: time.Now().UnixMilli()}
	skipped = map[string]int{}
	skip := func(m *sarama.ConsumerMessage, err error) {
		var de *DecodeError
		reason := SkipMalformed
		if errors.As(err, &de) {
			reason = de.Reason
		}
		skipped[reason]++
		if typ := factType(m); typ != "" {
			h.c.problems.reportUnapplied(p, m.Offset, typ, err)
			return
		}
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
	return b, skipped
}

// isFact reports whether a record carries a fact's type header.
func isFact(m *sarama.ConsumerMessage) bool { return factType(m) != "" }

// factType is a record's type header, or "" (a tap).
func factType(m *sarama.ConsumerMessage) string {
	for _, h := range m.Headers {
		if h != nil && string(h.Key) == TypeHeader && len(h.Value) > 0 {
			return string(h.Value)
		}
	}
	return ""
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
	if ended {
		c.repairing.Store(false)
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
	if err := c.problems.pastEndError(); err != nil {
		return err
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
