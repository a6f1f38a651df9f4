package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/eapache/go-resiliency/breaker"

	"github.com/tapwars/tapwars/game"
)

// Producer writes tap events and tells each caller when Kafka acknowledged
// its event. Many concurrent callers share one idempotent async producer, so
// their events travel in the same requests.
type Producer struct {
	brokers []string
	cfg     *sarama.Config
	topic   string
	wg      sync.WaitGroup
	mu      sync.RWMutex // guards ap and closed against sends racing Close and renew
	ap      sarama.AsyncProducer
	closed  bool

	renewing  atomic.Bool  // a renewal is under way
	lastRenew atomic.Int64 // unix ns of the last renewal attempt
}

// NewProducer connects to Kafka. It fails when no broker answers.
func NewProducer(c Config) (*Producer, error) {
	cfg, err := saramaConfig(c)
	if err != nil {
		return nil, err
	}
	ap, err := sarama.NewAsyncProducer(c.Brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka producer %v: %w", c.Brokers, err)
	}
	p := &Producer{brokers: c.Brokers, cfg: cfg, topic: Topic}
	p.use(ap)
	return p, nil
}

// use makes ap the producer that new events go to, and hands its results to
// the waiting callers. The caller holds mu (or has not shared p yet).
func (p *Producer) use(ap sarama.AsyncProducer) {
	p.ap = ap
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		for m := range ap.Successes() {
			m.Metadata.(chan error) <- nil
		}
	}()
	go func() {
		defer p.wg.Done()
		for e := range ap.Errors() {
			e.Msg.Metadata.(chan error) <- e.Err
		}
	}()
}

// renew replaces the producer after Kafka was unreachable. sarama then
// keeps each partition's circuit breaker open for 10 s after its last
// failure and refuses every event meanwhile, even once Kafka is back; a new
// producer (with a new producer id) starts with closed breakers. It is only
// swapped in when the brokers answer, and tried at most once a second.
// Events already in the old producer end there, acknowledged or failed:
// none is sent by both, so idempotence holds.
func (p *Producer) renew() {
	now := time.Now().UnixNano()
	if now-p.lastRenew.Load() < int64(time.Second) || !p.renewing.CompareAndSwap(false, true) {
		return
	}
	p.lastRenew.Store(now)
	go func() {
		defer p.renewing.Store(false)
		ap, err := sarama.NewAsyncProducer(p.brokers, p.cfg)
		if err != nil {
			return // still unreachable: a later refused event tries again
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = ap.Close()
			return
		}
		old := p.ap
		p.use(ap)
		p.mu.Unlock()
		old.AsyncClose()
	}()
}

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("producer closed")

// Send writes one event keyed by player id and waits until Kafka
// acknowledged it or ctx ends. An error wraps game.ErrUnavailable when Kafka
// did not take the event in time; the event may still be written later.
func (p *Producer) Send(ctx context.Context, ev game.TapEvent) error {
	val, err := EncodeEvent(ev)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	msg := &sarama.ProducerMessage{
		Topic:    p.topic,
		Key:      sarama.StringEncoder(ev.UserID),
		Value:    sarama.ByteEncoder(val),
		Metadata: done,
	}
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return fmt.Errorf("send tap: %w: %w", game.ErrUnavailable, ErrClosed)
	}
	select {
	case p.ap.Input() <- msg:
		p.mu.RUnlock()
	case <-ctx.Done():
		p.mu.RUnlock()
		return fmt.Errorf("send tap: %w: kafka is not taking events: %w", game.ErrUnavailable, ctx.Err())
	}
	select {
	case err := <-done:
		if err != nil {
			if errors.Is(err, breaker.ErrBreakerOpen) {
				p.renew()
			}
			return fmt.Errorf("send tap: %w: %w", game.ErrUnavailable, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("send tap: %w: no acknowledgement from kafka: %w", game.ErrUnavailable, ctx.Err())
	}
}

// Close flushes what is buffered (waiting for acknowledgements) and stops.
func (p *Producer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.ap.AsyncClose()
	p.wg.Wait()
	return nil
}
