// Package live fans game updates out to the open pages and streams of one
// instance. One Hub per instance learns of changes from the store's pub/sub,
// reads the state once, renders every representation once (JSON, the game
// page's HTML fragments, the leaderboard page's), and wakes every client;
// each client's own goroutine then writes the newest frame. A slow client
// only ever skips frames (latest wins); it never delays the others, and one
// that stays stuck past the write timeout is disconnected.
//
// The connections themselves are served here too (Endpoints; the handlers
// route /events and /ws and decide who may connect): sse.go serves an
// event stream, websocket.go a WebSocket, and socket_taps.go reads the taps
// a socket carries the other way and answers them, under the handlers' tap
// rules (TapTaker).
//
// Files: hub.go registers clients, publishes frames and closes; state.go
// reads the state into frames and run.go decides when; render.go turns a frame into bytes per
// Format (pure); status.go decides the connection status (pure); pacing.go
// spaces frames, leaderboard changes and personal updates out; personal.go
// sends players their own stats; client.go is one connection's writer;
// endpoints.go, sse.go, websocket.go and socket_taps.go are the transports.
package live

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapwars/tapwars/game"
)

// Source is the game state the hub reads (store.Store in the app).
type Source interface {
	Snapshot(ctx context.Context, top int, now time.Time) (game.Snapshot, error)
	Stats(ctx context.Context, ids []string) (map[string]game.PlayerStats, error)
	Subscribe(ctx context.Context) <-chan struct{}
	Touch(ctx context.Context, now time.Time, users ...game.User) error
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

// Latest is the newest frame, or nil before the first.
func (h *Hub) Latest() *Frame { return h.last.Load() }

// Down reports whether the hub could not read the state lately.
func (h *Hub) Down() bool { return h.down.Load() }

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
