package live

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/metrics"
)

// Conn is one live connection's transport (SSE or WebSocket).
type Conn interface {
	// Write sends msgs in order, in one write to the network where the
	// transport can (a frame and a personal update that are due together
	// cost one system call, not two); it must give up at the deadline. (A
	// deadline, not a context: a context with a timeout per write cost ~13%
	// of the CPU of fanning out to 10,000 clients.)
	Write(deadline time.Time, msgs ...[]byte) error
	// Heartbeat keeps proxies from closing an idle connection.
	Heartbeat(ctx context.Context) error
	// Bye tells the client to reconnect (the server is going away).
	Bye(ctx context.Context) error
}

// Client is one registered live connection. Its goroutine waits on one
// channel: a new frame, a personal update, a heartbeat falling due, the hub
// closing and the connection's context ending all set what is due and wake
// it. (A select over four channels per frame was 10% of the server's CPU
// with 10,000 clients.)
type Client struct {
	format   Format
	user     *game.User // nil for anonymous streams
	wakeCh   chan struct{}
	personal atomic.Pointer[personalUpdate]
	bye      atomic.Bool // the hub closes: tell the client to reconnect
	kicked   atomic.Bool // the player was removed: tell them and end
	beat     atomic.Bool // a heartbeat is due
}

// personalUpdate is a player's own fragments and when the read they show
// started. A read that started before the one a client last wrote may end
// after it; the client never writes it, since a page takes a lower count
// of its own taps for an admin reset.
type personalUpdate struct {
	readAt time.Time
	msg    []byte
}

// wake tells the client a new frame (or personal update) waits.
func (c *Client) wake() {
	select {
	case c.wakeCh <- struct{}{}:
	default:
		metrics.DroppedFrames.Inc() // coalesced: the client will get the newest frame
	}
}

// signal wakes the client for something other than a frame.
func (c *Client) signal() {
	select {
	case c.wakeCh <- struct{}{}:
	default: // it is awake already and will see the flag
	}
}

// ServeOptions tune one connection.
type ServeOptions struct {
	WriteTimeout time.Duration // a write stuck this long disconnects the client (default 10 s)
	Heartbeat    time.Duration // idle heartbeat interval (default 15 s)
}

// withDefaults fills in the zero values of o.
func (o ServeOptions) withDefaults() ServeOptions {
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	return o
}

// Serve registers a client and writes frames to conn until ctx ends, a
// write fails or times out, or the hub closes. The client gets the current
// state at once (and its own stats when user is set).
func (h *Hub) Serve(ctx context.Context, conn Conn, format Format, user *game.User, opt ServeOptions) error {
	opt = opt.withDefaults()
	c := &Client{format: format, user: user, wakeCh: make(chan struct{}, 1)}
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		return ErrClosing
	}
	h.clients[c] = struct{}{}
	h.serving.Add(1)
	h.mu.Unlock()
	defer h.serving.Done()
	gauge := metrics.LiveConnections.WithLabelValues(format.Transport.String())
	gauge.Inc()
	defer func() {
		h.mu.Lock()
		delete(h.clients, c)
		h.mu.Unlock()
		gauge.Dec()
	}()

	write := func(msgs ...[]byte) error {
		if err := conn.Write(time.Now().Add(opt.WriteTimeout), msgs...); err != nil {
			return fmt.Errorf("live write: %w", err)
		}
		return nil
	}
	// The full current state at once: the newest frame, or a fresh read
	// when the hub has none yet.
	f, err := h.first(ctx)
	if err != nil {
		return fmt.Errorf("first state: %w", err)
	}
	if b := f.Bytes(format); len(b) > 0 {
		if err := write(b); err != nil {
			return err
		}
	}
	last := f.Seq
	var personalAt time.Time // when the read of the last personal update written started
	if user != nil {
		readAt := time.Now()
		st, err := h.src.Stats(ctx, []string{user.ID})
		if err == nil {
			if b, err := Personal(st[user.ID], format); err == nil && b != nil {
				if err := write(b); err != nil {
					return err
				}
				personalAt = readAt
			}
		}
		_ = h.src.Touch(ctx, time.Now(), *user)
	}

	var due [][]byte // what one wake writes: the frame, the personal update
	beat := time.AfterFunc(opt.Heartbeat, func() { c.beat.Store(true); c.signal() })
	defer beat.Stop()
	defer context.AfterFunc(ctx, c.signal)()
	for range c.wakeCh {
		if ctx.Err() != nil {
			return nil
		}
		if c.kicked.Load() {
			if b := kickedMessage(format); b != nil {
				_ = write(b)
			}
			return ErrKicked
		}
		if c.bye.Load() {
			bctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := conn.Bye(bctx)
			cancel()
			return err
		}
		if c.beat.Swap(false) {
			hctx, cancel := context.WithTimeout(ctx, opt.WriteTimeout)
			err := conn.Heartbeat(hctx)
			cancel()
			if err != nil {
				return fmt.Errorf("live heartbeat: %w", err)
			}
			beat.Reset(opt.Heartbeat)
		}
		due = due[:0]
		f := h.Latest()
		if f != nil && f.Seq != last {
			if b := f.Since(format, last); len(b) > 0 {
				due = append(due, b)
			}
			last = f.Seq
		}
		if p := c.personal.Swap(nil); p != nil && p.readAt.After(personalAt) {
			due = append(due, p.msg)
			personalAt = p.readAt
		}
		if len(due) > 0 {
			if err := write(due...); err != nil {
				return err
			}
		}
		if f != nil {
			f.written()
		}
	}
	return nil // not reached: wakeCh is never closed
}

// IsGone reports whether err only means that the client went away.
func IsGone(err error) bool {
	return err == nil || errors.Is(err, context.Canceled) || errors.Is(err, ErrClosing)
}
