package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/game"
)

// Producer writes tap events and tells each caller when Kafka acknowledged
// its event.
//
// It does not use sarama's AsyncProducer, whose pipeline moves every message
// through several goroutines and channels: on a busy 2-core server that cost
// more CPU per tap than the HTTP handler itself. Instead a Send appends its
// record to its partition's waiting list, and one sender goroutine per
// leader broker takes everything waiting for that broker's partitions, packs
// it into ONE produce request (one record batch per partition, acks=all,
// idempotent), sends it over sarama's low-level Broker API, and completes
// each waiting Send with the answer. While a request is on the wire the next
// one fills up, so under load a request carries hundreds of taps.
//
// Idempotence: each batch carries the producer id from InitProducerID and
// the partition's next sequence number. On a retriable error the very same
// batch (same records, same sequence numbers) is sent again, so the broker
// drops it if the first attempt was written after all. A batch that ends
// without an acknowledgement (given up, or refused as out of order) retires
// the producer id: the next batch asks for a new one and sequences restart
// at 0, so a sequence number is never reused for other records.
//
// What a caller can rely on: Send returns nil only after the broker
// acknowledged the record with acks=all. A record whose Send failed or
// timed out may still have been written (its request reached the broker but
// the answer did not reach us); a record is never written twice.
type Producer struct {
	client      sarama.Client
	topic       string
	version     int16 // of produce requests
	timeoutMs   int32 // how long the broker may wait for the in-sync replicas
	codec       sarama.CompressionCodec
	level       int
	maxBytes    int           // per request (estimated)
	backoff     time.Duration // first pause before a batch is resent
	linger      time.Duration // wait from idle before a request (Producer.Flush.Frequency)
	partitioner sarama.Partitioner

	// The partitioner is not safe for concurrent use: hashMu guards it and
	// the message it hashes (kept here so hashing allocates nothing).
	hashMu  sync.Mutex
	hashMsg sarama.ProducerMessage
	hashKey keyEncoder

	route    atomic.Pointer[route] // partitions and their senders, replaced on metadata changes
	kick     chan struct{}         // asks the metadata goroutine for a refresh (capacity 1)
	drain    chan struct{}         // closed by Close: senders send what waits, then exit
	stop     chan struct{}         // closed when Close stops waiting: retries end at once
	stopOnce sync.Once
	isClosed atomic.Bool // fast path of Send; partition.closed is the authority

	mu       sync.Mutex // guards closed, senders and route updates
	closed   bool
	senders  map[int32]*sender // by broker id
	senderWG sync.WaitGroup
	metaWG   sync.WaitGroup

	pidMu    sync.Mutex
	pid      producerID
	pidValid bool // false: the next batch needs a new producer id first
}

// Limits and timings of the producer.
const (
	// maxRequestRecords bounds the taps of one produce request (and so the
	// work done between two answers).
	maxRequestRecords = 4096
	// recordOverhead is the most a record adds to its key and value on the
	// wire (sarama's maximumRecordOverhead).
	recordOverhead = 36
	// deliveryTimeout bounds how long one request is retried, whatever its
	// callers' contexts say (TAP_TIMEOUT is normally much shorter).
	deliveryTimeout = 10 * time.Second
	// maxBackoff caps the pause between two attempts, and so how long after
	// a broker came back the first waiting tap is sent.
	maxBackoff = 250 * time.Millisecond
	// closeDrain is how long Close lets the senders finish what is waiting;
	// closeAbort is how much longer it waits for a request on the wire.
	closeDrain = 5 * time.Second
	closeAbort = 2 * time.Second
)

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("producer closed")

// errAbandoned completes a waiting Send whose context ended before its
// record was sent: that caller has returned already.
var errAbandoned = errors.New("caller gave up before the record was sent")

// producerID is the idempotent producer identity that batches carry. gen
// counts the ids this Producer obtained; a partition's sequence numbers
// belong to one gen.
type producerID struct {
	id    int64
	epoch int16
	gen   uint64
}

// route is one view of the topic's metadata: its partitions and which
// sender delivers each. A new route replaces it whenever metadata changes;
// the partition objects (with their waiting lists and sequence numbers)
// carry over.
type route struct {
	parts   []*partition           // by partition id
	leaders []int32                // leader broker id by partition id, -1 if unknown
	senders []*sender              // sender of each partition's leader, nil if unknown
	owned   map[int32][]*partition // partitions by leader broker id
}

// partition is one partition of the topic with the Sends waiting for it.
type partition struct {
	id int32

	mu      sync.Mutex
	pending []*waiter // not taken by a sender yet
	spare   []*waiter // an emptied list to swap in for pending (fewer allocations)
	busy    bool      // a batch of this partition is being delivered
	closed  bool

	// Owned by the sender that set busy.
	gen uint64 // producer id generation that seq belongs to
	seq int32  // sequence number of the next record
}

// waiter is one Send waiting for its record's acknowledgement. Waiters are
// reused: only after a Send received its result, as the sender never touches
// a waiter after completing it.
type waiter struct {
	ctx  context.Context
	key  []byte
	val  []byte
	done chan error // capacity 1: completing never blocks
}

var waiters = sync.Pool{New: func() any {
	return &waiter{key: make([]byte, 0, 40), done: make(chan error, 1)}
}}

func (w *waiter) size() int { return len(w.key) + len(w.val) + recordOverhead }

// keyEncoder is a sarama.Encoder over a reusable byte slice; as a pointer it
// goes into an interface without allocating.
type keyEncoder struct{ b []byte }

func (k *keyEncoder) Encode() ([]byte, error) { return k.b, nil }
func (k *keyEncoder) Length() int             { return len(k.b) }

// NewProducer connects to Kafka. It fails when no broker answers.
func NewProducer(c Config) (*Producer, error) {
	cfg, err := producerConfig(c)
	if err != nil {
		return nil, err
	}
	version, err := produceVersion(cfg.Version)
	if err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(c.Brokers, cfg)
	if err != nil {
		return nil, c.Security.explain(c.Brokers, err)
	}
	p := &Producer{
		client:      client,
		topic:       Topic,
		version:     version,
		timeoutMs:   int32(cfg.Producer.Timeout / time.Millisecond),
		codec:       cfg.Producer.Compression,
		level:       cfg.Producer.CompressionLevel,
		maxBytes:    cfg.Producer.MaxMessageBytes - 16<<10, // room for the request's and batches' headers
		backoff:     cfg.Producer.Retry.Backoff,
		linger:      cfg.Producer.Flush.Frequency,
		partitioner: cfg.Producer.Partitioner(Topic),
		kick:        make(chan struct{}, 1),
		drain:       make(chan struct{}),
		stop:        make(chan struct{}),
		senders:     map[int32]*sender{},
	}
	p.hashMsg = sarama.ProducerMessage{Topic: p.topic, Key: &p.hashKey}
	p.route.Store(&route{})
	// Without the topic's partitions Sends fail (and ask for a refresh)
	// until a later refresh finds them, as they did with sarama's producer.
	if err := p.refresh(); err != nil {
		slog.Debug("kafka producer: no metadata yet", "topic", p.topic, "err", err)
	}
	p.metaWG.Add(1)
	go p.metadataLoop(cfg.Metadata.RefreshFrequency)
	return p, nil
}

// produceVersion is the produce request version for the configured Kafka
// version, as sarama's producer picks it (3+ carries record batches, which
// idempotence needs).
func produceVersion(v sarama.KafkaVersion) (int16, error) {
	for _, c := range []struct {
		kafka   sarama.KafkaVersion
		request int16
	}{
		{sarama.V3_7_0_0, 10}, {sarama.V2_8_0_0, 9}, {sarama.V2_4_0_0, 8}, {sarama.V2_1_0_0, 7},
		{sarama.V2_0_0_0, 6}, {sarama.V1_0_0_0, 5}, {sarama.V0_11_0_0, 3},
	} {
		if v.IsAtLeast(c.kafka) {
			return c.request, nil
		}
	}
	return 0, fmt.Errorf("kafka version %s: the idempotent producer needs 0.11 or later", v)
}

// Send writes one event keyed by player id and waits until Kafka
// acknowledged it or ctx ends. An error wraps game.ErrUnavailable when Kafka
// did not take the event in time; the event may still be written later.
func (p *Producer) Send(ctx context.Context, ev game.TapEvent) error {
	if p.isClosed.Load() {
		return fmt.Errorf("send tap: %w: %w", game.ErrUnavailable, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("send tap: %w: %w", game.ErrUnavailable, err)
	}
	val, err := EncodeEvent(ev)
	if err != nil {
		return fmt.Errorf("send tap: %w: %w", game.ErrUnavailable, err)
	}
	w := waiters.Get().(*waiter)
	w.ctx, w.val = ctx, val
	w.key = append(w.key[:0], ev.UserID...)

	rt := p.route.Load()
	if len(rt.parts) == 0 {
		p.refreshSoon()
		p.recycle(w)
		return fmt.Errorf("send tap: %w: no partitions known for topic %s", game.ErrUnavailable, p.topic)
	}
	p.hashMu.Lock()
	p.hashKey.b = w.key
	n, err := p.partitioner.Partition(&p.hashMsg, int32(len(rt.parts)))
	p.hashKey.b = nil
	p.hashMu.Unlock()
	if err != nil {
		p.recycle(w)
		return fmt.Errorf("send tap: %w: partition: %w", game.ErrUnavailable, err)
	}
	ps := rt.parts[n]
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		p.recycle(w)
		return fmt.Errorf("send tap: %w: %w", game.ErrUnavailable, ErrClosed)
	}
	ps.pending = append(ps.pending, w)
	// Only the first waiting record needs to wake the sender: until it has
	// taken the list, it will see the later ones too.
	first := len(ps.pending) == 1
	ps.mu.Unlock()
	if s := rt.senders[n]; s == nil {
		p.refreshSoon() // no known leader: the record goes with the route that names one
	} else if first {
		s.wake()
	}

	select {
	case err := <-w.done:
		p.recycle(w)
		if err != nil {
			return fmt.Errorf("send tap: %w: %w", game.ErrUnavailable, err)
		}
		return nil
	case <-ctx.Done():
		// The waiter stays with the sender (it may still complete it), so
		// it is not reused.
		return fmt.Errorf("send tap: %w: no acknowledgement from kafka: %w", game.ErrUnavailable, ctx.Err())
	}
}

// recycle returns a waiter that no sender holds to the pool.
func (p *Producer) recycle(w *waiter) {
	w.ctx, w.val = nil, nil
	waiters.Put(w)
}

// Close sends what is waiting, waits for the answers (at most closeDrain,
// plus closeAbort for a request already on the wire), and stops. Sends that
// are still waiting then fail with ErrClosed.
func (p *Producer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.isClosed.Store(true)
	rt := p.route.Load()
	for _, ps := range rt.parts {
		ps.mu.Lock()
		ps.closed = true
		ps.mu.Unlock()
	}
	p.mu.Unlock()

	var errs []error
	close(p.drain)
	if !waitFor(&p.senderWG, closeDrain) {
		p.stopOnce.Do(func() { close(p.stop) })
		if !waitFor(&p.senderWG, closeAbort) {
			errs = append(errs, fmt.Errorf("close kafka producer: a produce request still waits for a broker after %v", closeDrain+closeAbort))
		}
	}
	p.stopOnce.Do(func() { close(p.stop) })
	if !waitFor(&p.metaWG, closeAbort) {
		errs = append(errs, errors.New("close kafka producer: a metadata request still waits for a broker"))
	}
	// Records of partitions that no sender delivered (no leader known).
	for _, ps := range rt.parts {
		ps.mu.Lock()
		left := ps.pending
		ps.pending = nil
		ps.mu.Unlock()
		for _, w := range left {
			w.done <- ErrClosed
		}
	}
	if err := p.client.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
		errs = append(errs, fmt.Errorf("close kafka producer: %w", err))
	}
	return errors.Join(errs...)
}

// waitFor waits for wg at most d and reports whether it finished. The
// goroutine waiting on wg ends with it: every goroutine counted there ends
// by itself once stop is closed and its request returned.
func waitFor(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// refreshSoon asks the metadata goroutine for a refresh.
func (p *Producer) refreshSoon() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// metadataLoop refreshes the topic's metadata when a sender or Send asks
// for it, and every interval (to see added partitions). Only this goroutine
// waits for metadata, so a slow refresh never holds a sender.
func (p *Producer) metadataLoop(interval time.Duration) {
	defer p.metaWG.Done()
	if interval <= 0 {
		interval = time.Minute
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-p.kick:
		case <-tick.C:
		}
		if err := p.refresh(); err != nil {
			slog.Debug("kafka producer: metadata refresh failed", "topic", p.topic, "err", err)
		}
		// Senders ask on every failed attempt, and Sends for a partition
		// without a known leader on every record: at most one refresh per
		// pause.
		if !p.sleep(p.backoff) {
			return
		}
	}
}

// refresh reads the topic's metadata and installs the route it gives.
func (p *Producer) refresh() error {
	if err := p.client.RefreshMetadata(p.topic); err != nil {
		return fmt.Errorf("kafka metadata of %s: %w", p.topic, err)
	}
	ids, err := p.client.Partitions(p.topic)
	if err != nil {
		return fmt.Errorf("kafka partitions of %s: %w", p.topic, err)
	}
	n := 0
	for _, id := range ids {
		n = max(n, int(id)+1)
	}
	leaders := make([]int32, n)
	for i := range leaders {
		leaders[i] = -1
	}
	for _, id := range ids {
		if b, err := p.client.Leader(p.topic, id); err == nil {
			leaders[id] = b.ID()
		}
	}
	p.setRoute(leaders)
	return nil
}

// setRoute installs a route for these leaders, starting a sender for each
// new leader broker, and wakes every sender (their partitions may have
// changed).
func (p *Producer) setRoute(leaders []int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.route.Load()
	rt := &route{
		parts:   make([]*partition, len(leaders)),
		leaders: leaders,
		senders: make([]*sender, len(leaders)),
		owned:   map[int32][]*partition{},
	}
	for i, id := range leaders {
		ps := &partition{id: int32(i), closed: p.closed}
		if i < len(old.parts) {
			ps = old.parts[i]
		}
		rt.parts[i] = ps
		if id < 0 {
			continue
		}
		s := p.senders[id]
		if s == nil && !p.closed {
			s = &sender{p: p, id: id, wakec: make(chan struct{}, 1)}
			p.senders[id] = s
			p.senderWG.Add(1)
			go s.run()
		}
		rt.senders[i] = s
		rt.owned[id] = append(rt.owned[id], ps)
	}
	p.route.Store(rt)
	for _, s := range p.senders {
		s.wake()
	}
}

// sleep pauses d, or less when the producer stops meanwhile (then it
// reports false).
func (p *Producer) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.stop:
		return false
	}
}

// producerID returns the producer id for the next batch, asking the broker
// for a new one when the last was retired.
func (p *Producer) producerID() (producerID, error) {
	p.pidMu.Lock()
	defer p.pidMu.Unlock()
	if p.pidValid {
		return p.pid, nil
	}
	res, err := p.client.InitProducerID()
	if err == nil && !errors.Is(res.Err, sarama.ErrNoError) {
		err = res.Err
	}
	if err != nil {
		return producerID{}, fmt.Errorf("kafka producer id: %w", err)
	}
	p.pid = producerID{id: res.ProducerID, epoch: res.ProducerEpoch, gen: p.pid.gen + 1}
	p.pidValid = true
	slog.Debug("kafka producer: new producer id", "id", res.ProducerID, "epoch", res.ProducerEpoch)
	return p.pid, nil
}

// retirePID makes the next batch ask for a new producer id, unless that
// already happened after gen.
func (p *Producer) retirePID(gen uint64) {
	p.pidMu.Lock()
	if p.pid.gen == gen {
		p.pidValid = false
	}
	p.pidMu.Unlock()
}

// sender delivers the partitions led by one broker, one request at a time.
type sender struct {
	p     *Producer
	id    int32         // broker id
	wakec chan struct{} // capacity 1: a record waits, or the route changed

	// Reused from request to request (one request at a time).
	batches []batch
	open    []*batch
	group   []*batch
	recs    []sarama.Record
	ptrs    []*sarama.Record
	next    int // partition to start taking from, for fairness under the limits
}

// batch is one partition's part of a request.
type batch struct {
	part    *partition
	waiters []*waiter
	rb      sarama.RecordBatch
	gen     uint64 // producer id generation of rb
	state   batchState
	err     error // why it failed, or failed last
}

type batchState int

const (
	batchOpen   batchState = iota // not acknowledged yet; (re)send it
	batchDone                     // acknowledged
	batchFailed                   // refused; not to be resent
)

func (s *sender) wake() {
	select {
	case s.wakec <- struct{}{}:
	default:
	}
}

func (s *sender) run() {
	defer s.p.senderWG.Done()
	for {
		if s.take() {
			s.deliver()
			continue
		}
		select {
		case <-s.wakec:
			// From idle, let more records gather before the request: at
			// moderate rates a request otherwise carries one or two taps,
			// and the broker's CPU per tap nearly doubled (4,000 taps/s:
			// 40 -> 72 µs). Under load the next request fills while one is
			// on the wire, and there is no wait.
			if !s.p.sleep(s.p.linger) {
				return
			}
		case <-s.p.drain:
			// Closing: send what still waits, then exit.
			if !s.take() {
				return
			}
			s.deliver()
		}
	}
}

// take moves the records waiting for this sender's partitions (within the
// request limits, skipping partitions with a batch under way) into
// s.batches and reports whether there are any. Records whose caller already
// gave up are dropped unsent.
func (s *sender) take() bool {
	for {
		took := s.takeOnce()
		if len(s.batches) > 0 {
			return true
		}
		if !took {
			return false
		}
		// Everything taken was dropped; more may wait beyond the limits.
	}
}

func (s *sender) takeOnce() (took bool) {
	s.batches = s.batches[:0]
	parts := s.p.route.Load().owned[s.id]
	count, size := 0, 0
	s.next++
	for i := range parts {
		if count >= maxRequestRecords || size >= s.p.maxBytes {
			break
		}
		ps := parts[(s.next+i)%len(parts)]
		ps.mu.Lock()
		if ps.busy || len(ps.pending) == 0 {
			ps.mu.Unlock()
			continue
		}
		k := 0
		for k < len(ps.pending) && count < maxRequestRecords {
			sz := ps.pending[k].size()
			if size+sz > s.p.maxBytes && count > 0 {
				break
			}
			size += sz
			count++
			k++
		}
		if k == 0 {
			ps.mu.Unlock()
			break
		}
		taken, rest := ps.pending[:k], ps.pending[k:]
		ps.pending = append(ps.spare[:0], rest...)
		ps.spare = nil
		ps.busy = true
		ps.mu.Unlock()
		s.batches = append(s.batches, batch{part: ps, waiters: taken})
	}
	took = len(s.batches) > 0
	// Drop the records of callers that are gone (outside the partition
	// locks; a context's Err may take a lock of its own).
	live := s.batches[:0]
	for _, b := range s.batches {
		ws := b.waiters[:0]
		for _, w := range b.waiters {
			if w.ctx.Err() != nil {
				w.done <- errAbandoned
				continue
			}
			ws = append(ws, w)
		}
		clear(b.waiters[len(ws):])
		b.waiters = ws
		if len(ws) == 0 {
			s.release(b.part, ws)
			continue
		}
		live = append(live, b)
	}
	clear(s.batches[len(live):])
	s.batches = live
	return took
}

// release ends a partition's batch: the partition may be taken again, by
// whichever sender leads it now.
func (s *sender) release(ps *partition, list []*waiter) {
	clear(list[:cap(list)])
	ps.mu.Lock()
	ps.busy = false
	if ps.spare == nil {
		ps.spare = list[:0]
	}
	more := len(ps.pending) > 0
	ps.mu.Unlock()
	if more {
		rt := s.p.route.Load()
		if int(ps.id) < len(rt.senders) && rt.senders[ps.id] != nil {
			rt.senders[ps.id].wake()
		}
	}
}

// finish completes every waiter of b with err and releases its partition.
func (s *sender) finish(b *batch, err error) {
	for _, w := range b.waiters {
		w.done <- err // the waiter is not touched after this
	}
	s.release(b.part, b.waiters)
	b.waiters = nil
}

// deliver sends s.batches until each is acknowledged or refused, or until
// it is given up: when every caller of the remaining batches is gone, after
// deliveryTimeout, or when Close stops the producer.
func (s *sender) deliver() {
	p := s.p
	deadline := time.Now().Add(deliveryTimeout)
	backoff := p.backoff
	pause := func() {
		p.refreshSoon() // most failures are cured by fresh metadata
		p.sleep(backoff)
		backoff = min(2*backoff, maxBackoff)
	}
	s.open = s.open[:0]
	for i := range s.batches {
		s.open = append(s.open, &s.batches[i])
	}

	// A producer id first. Nothing was sent yet, so giving up here needs no
	// new producer id.
	for err := s.assign(); err != nil; err = s.assign() {
		pause()
		if why := s.giveUp(deadline, err); why != nil {
			for _, b := range s.open {
				s.finish(b, why)
			}
			return
		}
	}

	for {
		s.attempt()
		open := s.open[:0]
		for _, b := range s.open {
			switch b.state {
			case batchDone:
				s.finish(b, nil)
			case batchFailed:
				// Refused (out of order, unknown producer id, too large…):
				// this partition's sequence is broken for this producer id.
				p.retirePID(b.gen)
				s.finish(b, b.err)
			default:
				open = append(open, b)
			}
		}
		s.open = open
		if len(open) == 0 {
			return
		}
		pause()
		if why := s.giveUp(deadline, open[0].err); why != nil {
			// These batches may or may not have been written. Their
			// sequence numbers must not carry other records, and sending
			// them later could write records whose callers were told they
			// failed: retire the producer id instead.
			for _, b := range open {
				p.retirePID(b.gen)
				s.finish(b, why)
			}
			return
		}
	}
}

// giveUp says why the open batches are given up, or nil to try again.
func (s *sender) giveUp(deadline time.Time, last error) error {
	select {
	case <-s.p.stop:
		return fmt.Errorf("%w: %w", ErrClosed, last)
	default:
	}
	if time.Now().After(deadline) {
		return fmt.Errorf("no acknowledgement from kafka in %v: %w", deliveryTimeout, last)
	}
	for _, b := range s.open {
		for _, w := range b.waiters {
			if w.ctx.Err() == nil {
				return nil // someone still waits
			}
		}
	}
	return fmt.Errorf("every caller gave up: %w", last)
}

// assign gets a producer id and builds the record batches of s.open with
// their partitions' next sequence numbers.
func (s *sender) assign() error {
	for {
		pid, err := s.p.producerID()
		if err != nil {
			return err
		}
		// A sequence number must not wrap (brokers disagree on how): a
		// fresh producer id restarts them at 0 long before.
		wraps := false
		for _, b := range s.open {
			ps := b.part
			if ps.gen == pid.gen && ps.seq > math.MaxInt32-maxRequestRecords {
				wraps = true
			}
		}
		if !wraps {
			s.build(pid)
			return nil
		}
		s.p.retirePID(pid.gen)
	}
}

// build fills each open batch's record batch.
func (s *sender) build(pid producerID) {
	total := 0
	for _, b := range s.open {
		total += len(b.waiters)
	}
	if cap(s.recs) < total {
		s.recs = make([]sarama.Record, total)
		s.ptrs = make([]*sarama.Record, total)
	}
	now := time.Now().Truncate(time.Millisecond)
	at := 0
	for _, b := range s.open {
		ps := b.part
		if ps.gen != pid.gen {
			ps.gen, ps.seq = pid.gen, 0
		}
		n := len(b.waiters)
		ptrs := s.ptrs[at : at+n : at+n]
		for j, w := range b.waiters {
			s.recs[at+j] = sarama.Record{Key: w.key, Value: w.val, OffsetDelta: int64(j)}
			ptrs[j] = &s.recs[at+j]
		}
		at += n
		b.rb = sarama.RecordBatch{
			Version:          2,
			Codec:            s.p.codec,
			CompressionLevel: s.p.level,
			FirstTimestamp:   now,
			MaxTimestamp:     now,
			LastOffsetDelta:  int32(n - 1),
			ProducerID:       pid.id,
			ProducerEpoch:    pid.epoch,
			FirstSequence:    ps.seq,
			Records:          ptrs,
		}
		ps.seq += int32(n)
		b.gen = pid.gen
		b.state = batchOpen
		b.err = nil
	}
}

// attempt sends every open batch once, to its partition's leader (normally
// all in one request), and sets each batch's state from the answer.
func (s *sender) attempt() {
	p := s.p
	rt := p.route.Load()
	todo := s.open
	for len(todo) > 0 {
		leader := leaderOf(rt, todo[0].part)
		s.group = s.group[:0]
		rest := todo[:0:0]
		for _, b := range todo {
			if leaderOf(rt, b.part) == leader {
				s.group = append(s.group, b)
			} else {
				rest = append(rest, b)
			}
		}
		todo = rest
		s.produce(leader, s.group)
	}
}

func leaderOf(rt *route, ps *partition) int32 {
	if int(ps.id) < len(rt.leaders) {
		return rt.leaders[ps.id]
	}
	return -1
}

// produce sends one request with the batches of group to broker id.
func (s *sender) produce(id int32, group []*batch) {
	p := s.p
	retry := func(err error) {
		for _, b := range group {
			b.err = err
		}
	}
	if id < 0 {
		retry(sarama.ErrLeaderNotAvailable)
		return
	}
	broker, err := p.client.Broker(id)
	if err != nil {
		retry(fmt.Errorf("kafka broker %d: %w", id, err))
		return
	}
	req := &sarama.ProduceRequest{Version: p.version, RequiredAcks: sarama.WaitForAll, Timeout: p.timeoutMs}
	for _, b := range group {
		req.AddBatch(p.topic, b.part.id, &b.rb)
	}
	res, err := broker.Produce(req)
	if err != nil {
		var enc sarama.PacketEncodingError
		if errors.As(err, &enc) || errors.Is(err, sarama.ErrUnsupportedVersion) {
			for _, b := range group {
				b.state, b.err = batchFailed, fmt.Errorf("kafka produce: %w", err)
			}
			return
		}
		// The connection is in doubt (sarama keeps it after a read
		// timeout): close it, the next attempt dials again.
		_ = broker.Close()
		retry(fmt.Errorf("kafka produce to %s: %w", broker.Addr(), err))
		return
	}
	for _, b := range group {
		block := res.GetBlock(p.topic, b.part.id)
		switch {
		case block == nil:
			b.err = fmt.Errorf("kafka produce: no answer for partition %d", b.part.id)
		case retriable(block.Err):
			b.err = fmt.Errorf("kafka produce to partition %d: %w", b.part.id, block.Err)
		case errors.Is(block.Err, sarama.ErrNoError), errors.Is(block.Err, sarama.ErrDuplicateSequenceNumber):
			// A duplicate was written by an earlier attempt of this batch.
			b.state = batchDone
		default:
			b.state, b.err = batchFailed, fmt.Errorf("kafka produce to partition %d: %w", b.part.id, block.Err)
		}
	}
}

// retriable reports whether a batch refused with err is sent again as it
// is. Out of order sequence, unknown producer id and invalid epoch are not:
// the producer id is retired instead.
func retriable(err sarama.KError) bool {
	switch err {
	case sarama.ErrNotLeaderForPartition, sarama.ErrLeaderNotAvailable, sarama.ErrRequestTimedOut,
		sarama.ErrNotEnoughReplicas, sarama.ErrNotEnoughReplicasAfterAppend,
		sarama.ErrUnknownTopicOrPartition, // e.g. right after the topic was created or the broker restarted
		sarama.ErrNetworkException, sarama.ErrBrokerNotAvailable, sarama.ErrReplicaNotAvailable,
		sarama.ErrKafkaStorageError, sarama.ErrFencedLeaderEpoch, sarama.ErrUnknownLeaderEpoch:
		return true
	}
	return false
}
