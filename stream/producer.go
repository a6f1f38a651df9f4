package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/game"
)

// Producer writes tap events and tells each caller when Kafka acknowledged
// its event. Many concurrent callers share one idempotent async producer, so
// their events travel in the same requests.
type Producer struct {
	ap     sarama.AsyncProducer
	topic  string
	wg     sync.WaitGroup
	mu     sync.RWMutex // guards closed against sends racing Close
	closed bool
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
	p := &Producer{ap: ap, topic: Topic}
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
	return p, nil
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
