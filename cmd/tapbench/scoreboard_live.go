package main

// The bare scoreboard server's fan-out: what live.Hub does per frame
// (live/hub.go, state.go, run.go, pacing.go, client.go), with the state read
// from memory. One frame at a time, rendered once by live.Render (deltas
// included) by the first client that needs it; every client woken and
// writing the newest frame from its own goroutine (latest wins); the next
// frame waits until all but 1% of the clients have this one (at most
// 250 ms), then as long again as half that, and at least 50 ms; a
// leaderboard change shows on the pages at most every 250 ms or three
// frames; the state is also re-read after a second without a frame and
// sent at once when it changed (the hub's idle re-read). Personal updates
// and presence heartbeats are left out: tapbench's live clients are
// anonymous. So are the 15 s keep-alive heartbeats.
//
// Keep the constants and rules here in step with package live: the
// comparison is only fair while both pace alike.

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/live"
)

// The hub's defaults (live.Options, live/pacing.go, live.ServeOptions).
const (
	frameMinGap    = 50 * time.Millisecond  // Options.MinInterval
	boardEvery     = 250 * time.Millisecond // Options.BoardInterval
	idleRefresh    = time.Second            // Options.IdleRefresh
	drainWait      = 250 * time.Millisecond // maxDrainWait
	frameWriteTime = 10 * time.Second       // ServeOptions.WriteTimeout
)

// fanout sends the scoreboard's frames to its live clients.
type fanout struct {
	s    *scoreboard
	last atomic.Pointer[boardFrame]

	mu      sync.Mutex
	clients map[*boardClient]struct{}

	// The loop's own.
	seq        uint64
	board      []game.LeaderboardEntry // the leaderboard the pages show
	boardSince time.Time
	gap        time.Duration // between the last two frames
}

func newFanout(s *scoreboard) *fanout {
	return &fanout{s: s, clients: map[*boardClient]struct{}{}, gap: frameMinGap}
}

// boardFrame is one frame, as live.Frame.
type boardFrame struct {
	seq, prevSeq uint64
	view         live.View
	prev         *boardFrame // rendered before this one, for deltas; dropped once rendered

	once sync.Once
	done atomic.Bool
	out  *live.Rendered

	// Pacing: closed once all but straggle of the woken clients wrote it.
	drained  chan struct{}
	waiting  atomic.Int64
	straggle int64
}

func (f *boardFrame) rendered() *live.Rendered {
	f.once.Do(func() {
		defer f.done.Store(true)
		var prev *live.Rendered
		if f.prev != nil {
			prev = f.prev.out
		}
		f.prev = nil
		out, err := live.Render(prev, f.view)
		if err != nil {
			out = &live.Rendered{}
		}
		f.out = out
	})
	return f.out
}

// since is what a client of format that was last sent frame seq needs.
func (f *boardFrame) since(format live.Format, seq uint64) []byte {
	r := f.rendered()
	if seq == f.prevSeq {
		if d := r.Delta(format); d != nil {
			return d
		}
	}
	return r.Whole(format)
}

func (f *boardFrame) expect(n int) {
	f.drained = make(chan struct{})
	f.straggle = int64(max(1, n/100))
	f.waiting.Store(int64(n))
	if int64(n) <= f.straggle {
		close(f.drained)
	}
}

func (f *boardFrame) written() {
	if f.waiting.Add(-1) == f.straggle {
		close(f.drained)
	}
}

// next makes the frame after the last one for snap, holding a
// leaderboard change back as the hub does (live.shownBoard), and returns
// when a held-back change falls due (zero: none).
func (f *fanout) next(snap game.Snapshot, now time.Time) (*boardFrame, time.Time) {
	f.seq++
	fr := &boardFrame{seq: f.seq}
	var due time.Time
	old := f.last.Load()
	hold := max(boardEvery, 3*f.gap)
	switch {
	case old == nil:
		f.board, f.boardSince = snap.Leaderboard, now
	case slices.Equal(f.board, snap.Leaderboard):
	case now.Sub(f.boardSince) < hold:
		due = f.boardSince.Add(hold)
	default:
		f.board, f.boardSince = snap.Leaderboard, now
	}
	if old != nil && old.done.Load() {
		fr.prev, fr.prevSeq = old, old.seq
	}
	fr.view = live.View{Snapshot: snap, Board: f.board}
	return fr, due
}

// publish makes fr the newest frame and wakes every client.
func (f *fanout) publish(fr *boardFrame) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fr.expect(len(f.clients))
	f.last.Store(fr)
	for c := range f.clients {
		c.wake()
	}
}

// run makes frames until ctx ends, as live.Hub.Run: on a change, paced to
// the clients; on a held-back leaderboard falling due; every second when
// the state changed since the last frame.
func (f *fanout) run(ctx context.Context) {
	now := time.Now()
	first, _ := f.next(f.s.snapshot(now, f.s.leaderN), now)
	f.publish(first)
	board := time.NewTimer(time.Hour)
	board.Stop()
	idle := time.NewTicker(idleRefresh)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.s.changed:
		case <-board.C:
		case <-idle.C:
			now := time.Now()
			if snap := f.s.snapshot(now, f.s.leaderN); !sameGame(f.last.Load().view.Snapshot, snap) {
				fr, due := f.next(snap, now)
				f.publish(fr)
				// Rendered now, as a woken client renders it while the hub
				// reads Redis for the next frame: that one then carries a
				// delta.
				fr.rendered()
				if !due.IsZero() {
					board.Reset(time.Until(due))
				}
			}
			continue
		}
		idle.Reset(idleRefresh)
		start := time.Now()
		fr, due := f.next(f.s.snapshot(start, f.s.leaderN), start)
		f.publish(fr)
		if !due.IsZero() {
			board.Reset(time.Until(due))
		}
		select {
		case <-ctx.Done():
			return
		case <-fr.drained:
		case <-time.After(drainWait):
		}
		took := time.Since(start)
		f.gap = max(frameMinGap, took+took/2)
		select {
		case <-ctx.Done():
			return
		case <-time.After(f.gap - time.Since(start)):
		}
	}
}

// sameGame reports whether two snapshots show the same game (LastUpdated
// aside), as the hub's idle re-read decides (live.sameState).
func sameGame(a, b game.Snapshot) bool {
	a.GameState.LastUpdated, b.GameState.LastUpdated = 0, 0
	return reflect.DeepEqual(a, b)
}

// boardClient is one live connection.
type boardClient struct {
	wakeCh chan struct{}
}

func (c *boardClient) wake() {
	select {
	case c.wakeCh <- struct{}{}:
	default:
	}
}

// frameWriter writes one message to a live connection by the deadline.
type frameWriter interface {
	write(deadline time.Time, msg []byte) error
}

// serve writes the newest frame to w, and each newer one, until a write
// fails or ctx ends.
func (f *fanout) serve(ctx context.Context, format live.Format, w frameWriter) error {
	c := &boardClient{wakeCh: make(chan struct{}, 1)}
	f.mu.Lock()
	f.clients[c] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.clients, c)
		f.mu.Unlock()
	}()
	fr := f.last.Load()
	if err := w.write(time.Now().Add(frameWriteTime), fr.rendered().Whole(format)); err != nil {
		return err
	}
	last := fr.seq
	defer context.AfterFunc(ctx, c.wake)()
	for range c.wakeCh {
		if ctx.Err() != nil {
			return nil
		}
		fr := f.last.Load()
		if fr.seq != last {
			if b := fr.since(format, last); len(b) > 0 {
				if err := w.write(time.Now().Add(frameWriteTime), b); err != nil {
					return err
				}
			}
			last = fr.seq
		}
		fr.written()
	}
	return nil
}

// livePageOf is what a live request shows, as tapwars' handlers decide.
func livePageOf(r *http.Request) live.Page {
	switch {
	case r.URL.Query().Get("format") == "json":
		return live.PageJSON
	case r.URL.Query().Get("page") == "leaderboard":
		return live.PageBoard
	}
	return live.PageGame
}

// serveSSE takes the connection over, as tapwars does, and writes frames
// to it from a goroutine of its own; the request ends.
func (f *fanout) serveSSE(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	live.SSEHeader(h)
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.Write(&head)
	head.WriteString("\r\nretry: 1000\n\n")
	sw := &sseWriter{nc: nc}
	if err := sw.write(time.Now().Add(frameWriteTime), head.Bytes()); err != nil {
		nc.Close()
		return
	}
	format := live.Format{Transport: live.SSE, Page: livePageOf(r)}
	go func() {
		defer nc.Close()
		_ = f.serve(context.Background(), format, sw)
	}()
}

// Write deadlines as tapwars sets them (live.WriteDeadline).
type sseWriter struct {
	nc       net.Conn
	deadline live.WriteDeadline
}

func (s *sseWriter) write(deadline time.Time, msg []byte) error {
	s.deadline.Set(s.nc, deadline)
	_, err := s.nc.Write(msg)
	return err
}

// serveWS upgrades to a WebSocket (coder/websocket, as tapwars) that
// carries frames; the client sends nothing.
func (f *fanout) serveWS(w http.ResponseWriter, r *http.Request) {
	hw := &hijacked{ResponseWriter: w}
	c, err := websocket.Accept(hw, r, &websocket.AcceptOptions{})
	if err != nil {
		return
	}
	format := live.Format{Transport: live.WS, Page: livePageOf(r)}
	go func() {
		defer c.CloseNow()
		ctx := c.CloseRead(context.Background()) // ends when the client closes
		_ = f.serve(ctx, format, &wsWriter{c: c, nc: hw.nc})
	}()
}

// hijacked keeps the connection a WebSocket runs on, for write deadlines
// (the hub's way: no context per write).
type hijacked struct {
	http.ResponseWriter
	nc net.Conn
}

func (h *hijacked) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.nc = nc
	return nc, brw, err
}

type wsWriter struct {
	c        *websocket.Conn
	nc       net.Conn
	deadline live.WriteDeadline
}

func (w *wsWriter) write(deadline time.Time, msg []byte) error {
	w.deadline.Set(w.nc, deadline)
	return w.c.Write(context.Background(), websocket.MessageText, msg)
}
