// Package live fans game updates out to the open pages and streams of one
// instance. One Hub per instance learns of changes from the store's pub/sub,
// reads the state once, renders every representation once (JSON, the game
// page's HTML fragments, the leaderboard page's), and wakes every client;
// each client's own goroutine then writes the newest frame. A slow client
// only ever skips frames (latest wins); it never delays the others, and one
// that stays stuck past the write timeout is disconnected.
package live

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/metrics"
)

// Source is the game state the hub reads (store.Store in the app).
type Source interface {
	Snapshot(ctx context.Context, top int, now time.Time) (game.Snapshot, error)
	Stats(ctx context.Context, ids []string) (map[string]game.PlayerStats, error)
	Subscribe(ctx context.Context) <-chan struct{}
	Touch(ctx context.Context, now time.Time, users ...game.User) error
}

// Frame is one state update. Its bytes are rendered once, by the first
// client that needs them (an instance without live clients renders
// nothing), and shared by every client of a format.
type Frame struct {
	Seq      uint64
	Snapshot game.Snapshot
	// board is the leaderboard the pages show: the snapshot's, or the one
	// before while Options.BoardInterval holds a change back.
	board   []game.LeaderboardEntry
	boardAt time.Time // when board last changed
	status  Status
	prev    *Frame // the rendered frame before this one, for deltas; dropped once rendered
	prevSeq uint64

	delivery // how many of its clients have it, for pacing (pacing.go)

	once     sync.Once
	rendered atomic.Bool
	out      *Rendered
}

// Bytes is the frame as a client of format f receives it: the whole state.
func (f *Frame) Bytes(format Format) []byte {
	f.render()
	return f.out.Whole(format)
}

// Since is what a client of format f that was last sent frame seq needs: the
// parts that changed when seq is the frame before this one (possibly
// nothing), else the whole state.
func (f *Frame) Since(format Format, seq uint64) []byte {
	f.render()
	if seq == f.prevSeq {
		if d := f.out.Delta(format); d != nil {
			return d
		}
	}
	return f.out.Whole(format)
}

// render encodes every format once (Render). A rendering error (none is
// expected: the templates write to memory) leaves the frame empty, and
// clients skip it.
func (f *Frame) render() {
	f.once.Do(func() {
		defer f.rendered.Store(true)
		var prev *Rendered
		if f.prev != nil {
			prev = f.prev.out
		}
		f.prev = nil // keep no chain of old frames alive
		out, err := Render(prev, View{Snapshot: f.Snapshot, Board: f.board, Status: f.status})
		if err != nil {
			out = &Rendered{}
		}
		f.out = out
	})
}

// Options tune the hub; zero values take the defaults.
type Options struct {
	MinInterval   time.Duration // shortest time between two frames (default 50 ms: 20 per second)
	StatsInterval time.Duration // shortest time between personal updates (default 200 ms)
	TouchInterval time.Duration // presence heartbeat for connected players (default 20 s)
	LeaderboardN  int           // entries read for the leaderboard page (default 100)
	// BoardInterval is the shortest time between two leaderboard changes
	// on the pages (default 250 ms, or three frames when frames are spaced
	// out to reach thousands of clients): the scores move at the frame
	// rate, the ~3.5 KiB top 10 less often, which keeps most frames under
	// 1 KiB. JSON streams always get the newest leaderboard.
	BoardInterval time.Duration
	// IdleRefresh is how often the state is re-read when nothing was
	// published: presence expires silently, and a store outage must show
	// as "reconnecting" (default 1 s: one small read a second).
	IdleRefresh time.Duration
	// CatchingUp, when set, reports that the state is being rebuilt from
	// the log: pages then keep the numbers they had, marked "catching up",
	// instead of showing a half-rebuilt state.
	CatchingUp func() bool
}

// Hub is the per-instance fan-out.
type Hub struct {
	src  Source
	log  *slog.Logger
	opt  Options
	seq  atomic.Uint64
	last atomic.Pointer[Frame]
	link Link        // the state's link (status.go); under refreshMu
	down atomic.Bool // link is LinkDown, for Down
	// boardDue is when a held-back leaderboard change is due (unix ns), 0 none.
	boardDue atomic.Int64
	// gap is the time between the last two frames (ns): when pacing spaces
	// frames out, the leaderboard changes at most every third frame.
	gap atomic.Int64

	refreshMu sync.Mutex // serialises refresh
	firstMu   sync.Mutex // one first read for clients that find no frame
	mu        sync.Mutex
	clients   map[*Client]struct{}
	serving   sync.WaitGroup              // Serve calls under way
	sent      map[string]game.PlayerStats // personal stats last sent, by player
	closing   bool
}

// NewHub returns a hub; call Run to start it.
func NewHub(src Source, log *slog.Logger, opt Options) *Hub {
	if opt.MinInterval <= 0 {
		opt.MinInterval = 50 * time.Millisecond
	}
	if opt.StatsInterval <= 0 {
		opt.StatsInterval = 200 * time.Millisecond
	}
	if opt.TouchInterval <= 0 {
		opt.TouchInterval = 20 * time.Second
	}
	if opt.LeaderboardN <= 0 {
		opt.LeaderboardN = 100
	}
	if opt.BoardInterval <= 0 {
		opt.BoardInterval = 250 * time.Millisecond
	}
	if opt.IdleRefresh <= 0 {
		opt.IdleRefresh = time.Second
	}
	return &Hub{src: src, log: log, opt: opt, clients: map[*Client]struct{}{}, sent: map[string]game.PlayerStats{}}
}

// Run follows the store's change notifications until ctx ends, producing at
// most one frame per MinInterval (changes in between are coalesced).
func (h *Hub) Run(ctx context.Context) {
	changes := h.src.Subscribe(ctx)
	touch := time.NewTicker(h.opt.TouchInterval)
	defer touch.Stop()
	// Presence expires without any change being published: re-read now and
	// then even when nothing happened.
	idle := time.NewTicker(h.opt.IdleRefresh)
	defer idle.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	board := time.NewTimer(time.Hour) // a held-back leaderboard change falls due
	board.Stop()
	defer board.Stop()
	var lastStats time.Time
	// Personal updates come at most once per StatsInterval; one that falls
	// due sooner is sent when the interval is over, never dropped.
	statsDue := time.NewTimer(time.Hour)
	statsDue.Stop()
	defer statsDue.Stop()
	// stats stores the personal updates that changed and returns their
	// clients, for a frame's wake or signal to write them.
	stats := func() []*Client {
		lastStats = time.Now()
		cs, err := h.refreshStats(ctx)
		if err != nil {
			h.log.Warn("live personal update failed", "err", err)
		}
		return cs
	}
	signal := func(cs []*Client) {
		for _, c := range cs {
			c.signal()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				return
			}
		case <-retry.C:
		case <-board.C:
		case <-idle.C:
			if err := h.refresh(ctx, true); err != nil && ctx.Err() == nil {
				h.log.Warn("live update failed", "err", err)
			}
			continue
		case <-touch.C:
			h.touchAll(ctx)
			continue
		case <-statsDue.C:
			signal(stats())
			continue
		}
		start := time.Now()
		// Personal updates that are due go out with the frame: stored
		// first, they are written with it, in one write call.
		var staged []*Client
		statsNow := time.Since(lastStats) >= h.opt.StatsInterval
		if statsNow {
			staged = stats()
		}
		before := h.Latest()
		err := h.Refresh(ctx)
		if h.Latest() == before { // no frame woke them (a failed or held-back read)
			signal(staged)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			h.log.Warn("live update failed", "err", err)
			retry.Reset(time.Second)
		} else {
			if due := h.boardDue.Load(); due != 0 {
				board.Reset(time.Until(time.Unix(0, due)))
			}
			if !statsNow {
				statsDue.Reset(h.opt.StatsInterval - time.Since(lastStats))
			}
		}
		// Pace to the clients (pacing.go).
		gap := h.opt.MinInterval
		if f := h.Latest(); f != nil {
			var took time.Duration
			took, gap = f.gapAfter(ctx, start, gap)
			if ctx.Err() != nil {
				return
			}
			metrics.BroadcastSeconds.Observe(took.Seconds())
		}
		h.gap.Store(int64(gap))
		select {
		case <-ctx.Done():
			return
		case <-time.After(gap - time.Since(start)):
		}
	}
}

// Refresh reads the state, renders a frame and wakes every client.
func (h *Hub) Refresh(ctx context.Context) error { return h.refresh(ctx, false) }

// refresh is Refresh; with skipSame it sends nothing when the state did not
// change (the idle re-read).
func (h *Hub) refresh(ctx context.Context, skipSame bool) error {
	// One refresh at a time (Run and a first connect can both call it), so
	// an older read is never stored over a newer one.
	h.refreshMu.Lock()
	defer h.refreshMu.Unlock()
	snap, err := h.src.Snapshot(ctx, h.opt.LeaderboardN, time.Now())
	catching := err == nil && h.opt.CatchingUp != nil && h.opt.CatchingUp()
	t := h.step(err == nil, catching)
	old := h.last.Load()
	if err != nil {
		// Going down, every client is sent the last frame again with the
		// status in front, so pages keep the numbers they had, marked
		// "reconnecting"; no state frame is sent while down, and clients
		// that connect meanwhile get the same.
		if t.Publish() && old != nil {
			h.publish(&Frame{Seq: h.seq.Add(1), Snapshot: old.Snapshot, board: old.board, boardAt: old.boardAt, status: t.Status})
		}
		return err
	}
	if t.To == LinkCatchingUp {
		// While the state is rebuilt from the log, pages never go back:
		// a snapshot behind the one shown is held back, and every frame
		// is marked "catching up".
		if old != nil && behind(snap.GameState, old.Snapshot.GameState) {
			snap = old.Snapshot
		}
		if old != nil && old.status == t.Status && sameState(old.Snapshot, snap) {
			return nil // the pages show this already
		}
	} else if skipSame && !t.Changed() && old != nil && sameState(old.Snapshot, snap) {
		return nil
	}
	f := h.next(old, snap, time.Now())
	if t.Status != StatusNone {
		f.status, f.prev = t.Status, nil
	}
	h.publish(f)
	return nil
}

// step moves the link after a read (Link.Step) and logs a change.
func (h *Hub) step(readOK, catching bool) Transition {
	t := h.link.Step(readOK, catching)
	h.link = t.To
	h.down.Store(t.To == LinkDown)
	switch {
	case !t.Changed():
	case t.To == LinkDown:
		h.log.Warn("live updates paused: the store does not answer; clients show reconnecting")
	case t.To == LinkCatchingUp:
		h.log.Info("the state is being rebuilt from the log; clients show catching up")
	case t.From == LinkCatchingUp:
		h.log.Info("live updates resumed: the state is rebuilt")
	default:
		h.log.Info("live updates resumed")
	}
	return t
}

// publish makes f the newest frame and wakes every client, counting them
// for pacing (see expect).
func (h *Hub) publish(f *Frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f.expect(len(h.clients))
	h.last.Store(f)
	for c := range h.clients {
		c.wake()
	}
}

// next makes the frame that follows old (nil: none) for snap. The pages'
// leaderboard keeps old's while it changed less than BoardInterval ago;
// boardDue then tells Run when to show the held-back one.
func (h *Hub) next(old *Frame, snap game.Snapshot, now time.Time) *Frame {
	f := &Frame{Seq: h.seq.Add(1), Snapshot: snap, board: snap.Leaderboard, boardAt: now}
	h.boardDue.Store(0)
	if old == nil {
		return f
	}
	if old.rendered.Load() {
		f.prev, f.prevSeq = old, old.Seq
	}
	hold := max(h.opt.BoardInterval, 3*time.Duration(h.gap.Load()))
	switch {
	case slices.Equal(old.board, snap.Leaderboard):
		f.board, f.boardAt = old.board, old.boardAt
	case now.Sub(old.boardAt) < hold:
		f.board, f.boardAt = old.board, old.boardAt
		h.boardDue.Store(old.boardAt.Add(hold).UnixNano())
	}
	return f
}

// behind reports whether a shows less of the game than b: an earlier round,
// or fewer taps of a team in the same round (a new round starts at zero).
func behind(a, b game.State) bool {
	return a.Round < b.Round || a.Round == b.Round && (a.BlueScore < b.BlueScore || a.RedScore < b.RedScore)
}

// sameState reports whether two snapshots show the same game. LastUpdated
// is left out: it is "now" for a game that never changed.
func sameState(a, b game.Snapshot) bool {
	a.GameState.LastUpdated, b.GameState.LastUpdated = 0, 0
	return reflect.DeepEqual(a, b)
}

// first is the newest frame, read now if there is none yet: clients that
// connect together before the first frame share one read.
func (h *Hub) first(ctx context.Context) (*Frame, error) {
	if f := h.Latest(); f != nil {
		return f, nil
	}
	h.firstMu.Lock()
	defer h.firstMu.Unlock()
	if f := h.Latest(); f != nil {
		return f, nil
	}
	if err := h.Refresh(ctx); err != nil {
		return nil, err
	}
	return h.Latest(), nil
}

// Latest is the newest frame, or nil before the first.
func (h *Hub) Latest() *Frame { return h.last.Load() }

// Down reports whether the hub could not read the state lately.
func (h *Hub) Down() bool { return h.down.Load() }

// refreshStats gives each connected player their taps and rank when they
// changed since the last time, and returns the clients that got them (to
// be woken to write them).
func (h *Hub) refreshStats(ctx context.Context) ([]*Client, error) {
	h.mu.Lock()
	byUser := map[string][]*Client{}
	for c := range h.clients {
		if c.user != nil && c.format.Page.HTML() {
			byUser[c.user.ID] = append(byUser[c.user.ID], c)
		}
	}
	h.mu.Unlock()
	if len(byUser) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(byUser))
	for id := range byUser {
		ids = append(ids, id)
	}
	readAt := time.Now()
	stats, err := h.src.Stats(ctx, ids)
	if err != nil {
		return nil, err
	}
	var got []*Client
	for id, cs := range byUser {
		st := stats[id]
		h.mu.Lock()
		old, ok := h.sent[id]
		h.sent[id] = st
		h.mu.Unlock()
		if ok && old == st {
			continue
		}
		for _, c := range cs {
			if b, err := Personal(st, c.format); err == nil && b != nil {
				c.personal.Store(&personalUpdate{readAt: readAt, msg: b})
				got = append(got, c)
			}
		}
	}
	return got, nil
}

func (h *Hub) touchAll(ctx context.Context) {
	h.mu.Lock()
	seen := map[string]bool{}
	var users []game.User
	for c := range h.clients {
		if c.user != nil && !seen[c.user.ID] {
			seen[c.user.ID] = true
			users = append(users, *c.user)
		}
	}
	h.mu.Unlock()
	if err := h.src.Touch(ctx, time.Now(), users...); err != nil {
		h.log.Warn("presence heartbeat", "err", err)
	}
}

// Count returns the number of connected clients per transport.
func (h *Hub) Count() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{"sse": 0, "ws": 0}
	for c := range h.clients {
		out[c.format.Transport.String()]++
	}
	return out
}

// Close asks every client to reconnect (to another instance), stops
// accepting new ones, and waits (at most 2 s) until each has been told: live
// connections are taken over from the HTTP server, whose shutdown does not
// wait for them.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closing = true
	for c := range h.clients {
		c.bye.Store(true)
		c.signal()
	}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.serving.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

// Kick tells every live page of the players in ids, at once, that they were
// removed from the game, and ends their streams (Serve returns ErrKicked).
// Players not connected here are skipped; a kick seen again changes nothing.
func (h *Hub) Kick(ids []string) {
	if h == nil || len(ids) == 0 {
		return
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if c.user != nil && set[c.user.ID] && !c.kicked.Swap(true) {
			c.signal()
		}
	}
}

// ErrKicked is returned by Serve when the client's player was kicked.
var ErrKicked = errors.New("live updates: the player was removed from the game")

// ErrClosing is returned by Register when the instance shuts down.
var ErrClosing = errors.New("live updates: server is shutting down")
