package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/eapache/go-resiliency/breaker"

	"github.com/tapwars/tapwars/game"
)

// Producer writes records to Kafka and tells each caller when Kafka
// acknowledged them. It is sarama's AsyncProducer, idempotent with acks=all
// (see saramaConfig), plus one result per call: every message carries its
// call in ProducerMessage.Metadata, and two goroutines read sarama's
// Successes and Errors and complete the calls.
//
// What a caller can rely on: Send and Produce return nil only after the
// broker acknowledged every record with acks=all. A record whose call failed
// or timed out may still be written (sarama keeps retrying a message that is
// on its way when the caller gives up); sarama's idempotence keeps a record
// from being written twice by its retries.
type Producer struct {
	client sarama.Client

	// mu guards async and closed against input: Send and Produce hold it
	// shared while they hand messages to sarama, Close and renew
	// exclusively (sarama panics on input after AsyncClose).
	mu     sync.RWMutex
	async  sarama.AsyncProducer
	closed bool

	// sarama's partition producers stop asking for a leader for 10 s after
	// three failed tries (a circuit breaker), which would refuse taps for up
	// to 10 s after a broker outage. When one opens, the renewal goroutine
	// waits until Kafka answers and then replaces the AsyncProducer with a
	// fresh one (with a new producer id); the old one delivers or fails
	// what it holds and closes.
	tripped chan struct{} // capacity 1: a breaker opened
	gen     atomic.Uint64 // counts renewals: which AsyncProducer is in use
	stop    chan struct{} // closed by Close: renewal ends
	renewed chan struct{} // closed when the renewal goroutine ended

	results sync.WaitGroup // result goroutines of every AsyncProducer
	gone    chan struct{}  // closed when Close stopped waiting: calls still open fail

	pending atomic.Int64 // calls whose caller gave up while their records were on their way
	// keyParts is how many partitions of game-taps the ids without a pinned
	// partition are hashed over (0: all); see SetKeyPartitions.
	keyParts *atomic.Int32
}

// Record is one record to write to a topic. Partition's zero value is
// partition 0: set it to ByKey for a keyed record.
type Record struct {
	Key       string // partitioning key (player id); "" with Partition >= 0
	Value     []byte // nil writes a tombstone (for compacted topics)
	Partition int32  // ByKey (-1): chosen from Key (CRC32, like kcat); >= 0: exactly this partition
	Headers   map[string]string
}

// ByKey as a Record's Partition places it by its key.
const ByKey int32 = -1

// closeDrain bounds how long Close waits for sarama to deliver or fail what
// it holds; calls still open then fail with ErrClosed.
const closeDrain = 5 * time.Second

// renewPoll is the pause between two metadata requests while a broken
// AsyncProducer waits to be replaced: about how long after Kafka's return
// taps are refused.
const renewPoll = 100 * time.Millisecond

// ErrClosed is returned by Send and Produce after Close, and by calls that
// were still waiting when Close gave up on them.
var ErrClosed = errors.New("producer closed")

// errNotSent is the result of a record its caller stopped waiting for
// before handing it to sarama.
var errNotSent = errors.New("not sent: the caller stopped waiting before it reached the producer")

// call is one Send or Produce waiting for its records' results.
type call struct {
	mu   sync.Mutex
	left int   // records without a result yet
	err  error // the first record's error
	done chan struct{}
}

func newCall(n int) *call { return &call{left: n, done: make(chan struct{})} }

// result records one record's result; the last one completes the call.
func (c *call) result(err error) {
	c.mu.Lock()
	if err != nil && c.err == nil {
		c.err = err
	}
	c.left--
	last := c.left == 0
	c.mu.Unlock()
	if last {
		close(c.done)
	}
}

// NewProducer connects to Kafka. It fails when no broker answers.
func NewProducer(c Config) (*Producer, error) {
	cfg, err := producerConfig(c)
	if err != nil {
		return nil, err
	}
	keyParts := new(atomic.Int32)
	cfg.Producer.Partitioner = func(topic string) sarama.Partitioner {
		r := newRecordPartitioner(topic).(recordPartitioner)
		if topic == Topic {
			r.keyParts = keyParts
		}
		return r
	}
	client, err := sarama.NewClient(c.Brokers, cfg)
	if err != nil {
		return nil, c.Security.explain(c.Brokers, err)
	}
	async, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("kafka producer %v: %w", c.Brokers, err)
	}
	p := &Producer{
		client:   client,
		async:    async,
		tripped:  make(chan struct{}, 1),
		stop:     make(chan struct{}),
		renewed:  make(chan struct{}),
		gone:     make(chan struct{}),
		keyParts: keyParts,
	}
	p.readResults(async, 0)
	go p.renewLoop()
	return p, nil
}

// readResults completes the calls of async's messages as sarama returns
// them, until async is closed. gen is async's renewal generation.
func (p *Producer) readResults(async sarama.AsyncProducer, gen uint64) {
	p.results.Go(func() {
		for m := range async.Successes() {
			m.Metadata.(*call).result(nil)
		}
	})
	p.results.Go(func() {
		for e := range async.Errors() {
			if errors.Is(e.Err, breaker.ErrBreakerOpen) {
				p.trip(gen)
			}
			if c, ok := e.Msg.Metadata.(*call); ok {
				c.result(e.Err)
			}
		}
	})
}

// trip asks for a renewal when generation gen is still the producer in
// use (a replaced one's breakers do not matter). It takes no lock: callers
// drain sarama's results, which a Send holding mu may be waiting for.
func (p *Producer) trip(gen uint64) {
	if p.gen.Load() != gen {
		return
	}
	select {
	case p.tripped <- struct{}{}:
	default:
	}
}

// renewLoop replaces the AsyncProducer after a circuit breaker opened, as
// soon as Kafka answers a metadata request again.
func (p *Producer) renewLoop() {
	defer close(p.renewed)
	for {
		select {
		case <-p.stop:
			return
		case <-p.tripped:
		}
		for !p.tryRenew() {
			select {
			case <-p.stop:
				return
			case <-time.After(renewPoll):
			}
		}
	}
}

// tryRenew replaces the AsyncProducer if Kafka answers, and reports whether
// it did.
func (p *Producer) tryRenew() bool {
	if err := p.client.RefreshMetadata(); err != nil {
		return false
	}
	if err := p.renew(); err != nil {
		slog.Debug("kafka producer: renewal failed", "err", err)
		return false
	}
	return true
}

// renew swaps in a fresh AsyncProducer and closes the old one.
func (p *Producer) renew() error {
	fresh, err := sarama.NewAsyncProducerFromClient(p.client)
	if err != nil {
		return err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		fresh.AsyncClose()
		for range fresh.Errors() {
		}
		return nil
	}
	old := p.async
	p.async = fresh
	p.readResults(fresh, p.gen.Add(1))
	p.mu.Unlock()
	old.AsyncClose()
	slog.Info("kafka producer renewed after an outage")
	return nil
}

// Send writes one tap event to the taps topic, keyed and partitioned by
// player id, and waits until Kafka acknowledged it or ctx ends. An error is
// a game.EUNAVAILABLE error that wraps game.ErrUnavailable.
//
// When ctx ends after the event reached sarama, the error is a *Pending
// (code game.EPENDING): the tap may still be written, and Pending.Wait
// tells once sarama knows.
func (p *Producer) Send(ctx context.Context, ev game.TapEvent) error {
	val, err := EncodeEvent(ev)
	if err != nil {
		return unavailable("send tap", err)
	}
	err = p.produce(ctx, "send tap", Topic, Record{Key: ev.UserID, Value: val, Partition: ByKey})
	var pe *Pending
	if errors.As(err, &pe) {
		pe.err = game.Wrap(pe.err, game.EPENDING, "no answer in time: this tap may still count (it is not sent again)")
	}
	return err
}

// Produce writes recs to topic and returns once Kafka acknowledged all of
// them (acks=all, idempotent), or when ctx ends. On an error, any of recs
// may or may not have been written; records of one key (or one partition)
// are written in the order given.
func (p *Producer) Produce(ctx context.Context, topic string, recs ...Record) error {
	if len(recs) == 0 {
		return nil
	}
	for i, r := range recs {
		if r.Key == "" && r.Partition < 0 {
			return game.Errorf(game.EINVALID, "kafka record %d for %s: needs a key or a partition", i, topic)
		}
	}
	return p.produce(ctx, "produce to "+topic, topic, recs...)
}

func (p *Producer) produce(ctx context.Context, what, topic string, recs ...Record) error {
	if err := ctx.Err(); err != nil {
		return unavailable(what, err)
	}
	if topic == Topic {
		// A record the consumer would refuse is never written: the caller
		// answers an error, not a 2xx for something that never counts.
		for _, r := range recs {
			if len(r.Value) > MaxEventBytes {
				return game.Errorf(game.ETOOLARGE, "%s: a record of %d bytes is over the %d bytes the consumer reads; nothing was written",
					what, len(r.Value), MaxEventBytes)
			}
		}
	}
	c := newCall(len(recs))
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return unavailable(what, ErrClosed)
	}
	in := p.async.Input()
	for i := range recs {
		m := message(topic, &recs[i], c)
		if topic == Topic && m.Partition == ByKey {
			m.Partition = p.pinned(recs[i].Key)
		}
		select {
		case in <- m:
		case <-ctx.Done():
			p.mu.RUnlock()
			if i > 0 { // the records handed over already may still be written
				for range len(recs) - i {
					c.result(errNotSent) // the call completes with the others
				}
				return p.pendingCall(what, c, ctx.Err())
			}
			return unavailable(what, fmt.Errorf("no room in the producer's queue: %w", ctx.Err()))
		}
	}
	p.mu.RUnlock()

	select {
	case <-c.done:
		return p.outcome(what, c.err)
	case <-ctx.Done():
		return p.pendingCall(what, c, ctx.Err())
	case <-p.gone:
		return p.pendingCall(what, c, ErrClosed)
	}
}

// Pending is the error of a call whose records reached sarama but were not
// acknowledged when its caller stopped waiting: sarama may still write
// them (it retries what it holds), so the caller must not say they were
// not written. Its code is game.EPENDING (504).
type Pending struct {
	what string
	c    *call
	p    *Producer
	err  error
}

func (e *Pending) Error() string { return e.err.Error() }
func (e *Pending) Unwrap() error { return e.err }

// Wait returns the call's outcome once sarama knows it: nil when Kafka
// acknowledged every record, an EUNAVAILABLE error when sarama gave up on
// one. ctx bounds the wait (its error: still unknown).
func (e *Pending) Wait(ctx context.Context) error {
	select {
	case <-e.c.done:
		return e.p.outcome(e.what, e.c.err)
	case <-e.p.gone:
		return fmt.Errorf("%s: %w", e.what, ErrClosed)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pendingCall is the *Pending of c, counted in Pending until c completes.
func (p *Producer) pendingCall(what string, c *call, cause error) error {
	p.pending.Add(1)
	go func() {
		defer p.pending.Add(-1)
		select {
		case <-c.done:
		case <-p.gone:
		}
	}()
	return &Pending{what: what, c: c, p: p, err: game.Wrap(fmt.Errorf("%s: no acknowledgement from kafka: %w", what, cause), game.EPENDING,
		"no answer from Kafka in time: it may still be recorded")}
}

// PendingWait bounds how long anyone waits for the outcome of a *Pending:
// sarama gives up on a record well before (Retry.Max tries, each bounded
// by the network timeouts).
const PendingWait = 2 * time.Minute

// Pending is how many calls' records are on their way to Kafka after their
// callers stopped waiting: taps answered "may still count". A timed round's
// result waits for them.
func (p *Producer) Pending() int { return int(p.pending.Load()) }

// outcome is the error of a completed call whose first error is err.
func (p *Producer) outcome(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sarama.ErrInvalidPartition):
		return game.Wrap(err, game.EINVALID, fmt.Sprintf("%s: no such partition", what))
	}
	return unavailable(what, err)
}

// message is the sarama message of r, carrying its call.
func message(topic string, r *Record, c *call) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{Topic: topic, Partition: r.Partition, Metadata: c}
	if r.Key != "" {
		m.Key = sarama.StringEncoder(r.Key)
	}
	if r.Value != nil {
		m.Value = sarama.ByteEncoder(r.Value)
	}
	if len(r.Headers) > 0 {
		m.Headers = make([]sarama.RecordHeader, 0, len(r.Headers))
		for _, k := range slices.Sorted(maps.Keys(r.Headers)) {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(r.Headers[k])})
		}
	}
	return m
}

// unavailable is the error of a call that Kafka did not acknowledge: 503 to
// clients, and errors.Is(err, game.ErrUnavailable) for older checks.
func unavailable(what string, err error) error {
	return game.Wrap(fmt.Errorf("%s: %w: %w", what, game.ErrUnavailable, err), game.EUNAVAILABLE,
		"kafka unavailable: the event was not acknowledged in time, try again")
}

// SetKeyPartitions makes records of ids without a pinned partition go by
// their hash over partitions [0, n) of game-taps, whatever the topic grows
// to, so such a player's records stay on one partition; 0 hashes over all.
func (p *Producer) SetKeyPartitions(n int32) { p.keyParts.Store(n) }

// pinned is the partition of game-taps a key (a player id) is pinned to, or
// ByKey for a key without one. A partition the metadata does not know yet
// (added just now) is looked up once; one that does not exist at all (the
// topic was recreated smaller) falls back to the hash.
func (p *Producer) pinned(key string) int32 {
	n, ok := game.IDPartition(key)
	if !ok {
		return ByKey
	}
	for refreshed := false; ; refreshed = true {
		if ids, err := p.client.Partitions(Topic); err == nil && n < int32(len(ids)) {
			return n
		}
		if refreshed || p.client.RefreshMetadata(Topic) != nil {
			slog.Warn("kafka producer: a player's partition is not in game-taps; placing their record by its hash", "partition", n)
			return ByKey
		}
	}
}

// Partitions is the number of partitions of topic, from fresh metadata (a
// round marker must reach partitions added just now).
func (p *Producer) Partitions(topic string) (int32, error) {
	if err := p.client.RefreshMetadata(topic); err != nil {
		return 0, unavailable("partitions of "+topic, err)
	}
	ids, err := p.client.Partitions(topic)
	if err != nil {
		return 0, unavailable("partitions of "+topic, err)
	}
	if len(ids) == 0 {
		return 0, unavailable("partitions of "+topic, sarama.ErrUnknownTopicOrPartition)
	}
	return int32(len(ids)), nil
}

// Close stops taking records, lets sarama send what it holds and waits for
// the answers, at most closeDrain; calls still open then fail with
// ErrClosed. Later calls fail with ErrClosed at once.
func (p *Producer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()

	close(p.stop) // a renewal under way now closes what it made (closed is set)
	p.mu.Lock()
	p.async.AsyncClose()
	p.mu.Unlock()
	drained := make(chan struct{})
	go func() { p.results.Wait(); close(drained) }()
	ctx, cancel := context.WithTimeout(context.Background(), closeDrain)
	defer cancel()
	var errs []error
	select {
	case <-drained:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("close kafka producer: records still unanswered after %v", closeDrain))
	}
	select {
	case <-p.renewed:
	case <-ctx.Done(): // a metadata request waits for a broker; it ends with the client
	}
	close(p.gone)
	if err := p.client.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
		errs = append(errs, fmt.Errorf("close kafka producer: %w", err))
	}
	return errors.Join(errs...)
}

// recordPartitioner places a record with a partition set (>= 0) exactly
// there and hashes the key of the others with CRC32, as librdkafka (kcat)
// does, so `kcat -P -K` writes a player's records where this app does
// until the topic grows. keyParts, when set and > 0, bounds the hash to
// the partitions the topic had (SetKeyPartitions).
type recordPartitioner struct {
	crc      sarama.Partitioner
	keyParts *atomic.Int32
}

func newRecordPartitioner(topic string) sarama.Partitioner {
	return recordPartitioner{crc: sarama.NewConsistentCRCHashPartitioner(topic)}
}

func (r recordPartitioner) Partition(m *sarama.ProducerMessage, n int32) (int32, error) {
	if m.Partition >= 0 {
		return m.Partition, nil // sarama refuses it if out of range
	}
	if r.keyParts != nil {
		if k := r.keyParts.Load(); k > 0 && k < n {
			n = k
		}
	}
	return r.crc.Partition(m, n)
}

// RequiresConsistency: a key's partition must not depend on which
// partitions have a leader at the moment.
func (recordPartitioner) RequiresConsistency() bool { return true }
