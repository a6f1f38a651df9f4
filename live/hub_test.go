package live_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/live"
	"github.com/tapwars/tapwars/store"
)

// The hub runs against a real redis-server through store.Store: changes are
// made in Redis and announced with store.Notify (the consumer's pub/sub),
// exactly as in the app.

type hubEnv struct {
	t   *testing.T
	rdb *redis.Client
	st  *store.Store
	hub *live.Hub
}

func startHub(t *testing.T, opt live.Options) *hubEnv {
	t.Helper()
	r := testenv.StartRedis(t)
	rdb := r.Client()
	st := store.New(rdb)
	hub := live.NewHub(st, slog.New(slog.NewTextHandler(io.Discard, nil)), opt)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &hubEnv{t: t, rdb: rdb, st: st, hub: hub}
}

// join adds a player to the store.
func (e *hubEnv) join(name string) game.User {
	e.t.Helper()
	u, err := e.st.Join(context.Background(), name, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// change adds n taps to the total and tells every hub, as an applied batch
// does; it returns the new total.
func (e *hubEnv) change(n int64) int64 {
	e.t.Helper()
	ctx := context.Background()
	total, err := e.rdb.IncrBy(ctx, store.KeyTotalTaps, n).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.Notify(ctx); err != nil {
		e.t.Fatal(err)
	}
	return total
}

// recConn is an in-process live.Conn that records what it is sent.
type recConn struct {
	mu     sync.Mutex
	msgs   [][]byte
	at     []time.Time
	totals []int64 // total taps of each JSON state message, in order
	signal chan struct{}
	calls  [][]byte // what each Write call carried
}

func newRecConn() *recConn { return &recConn{signal: make(chan struct{}, 1)} }

var totalRE = regexp.MustCompile(`id="total-taps"[^>]*data-n="(\d+)"`)

func (c *recConn) Write(deadline time.Time, msgs ...[]byte) error {
	c.mu.Lock()
	c.calls = append(c.calls, bytes.Join(msgs, nil))
	c.mu.Unlock()
	for _, msg := range msgs {
		if err := c.write(deadline, msg); err != nil {
			return err
		}
	}
	return nil
}

func (c *recConn) write(deadline time.Time, msg []byte) error {
	if time.Now().After(deadline) {
		return os.ErrDeadlineExceeded
	}
	total := int64(-1)
	var s game.Snapshot
	if json.Unmarshal(msg, &s) == nil {
		total = s.GameState.TotalTaps
	} else if m := totalRE.FindSubmatch(msg); m != nil {
		total, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	c.mu.Lock()
	c.msgs = append(c.msgs, bytes.Clone(msg))
	c.at = append(c.at, time.Now())
	if total >= 0 {
		c.totals = append(c.totals, total)
	}
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
	return nil
}

func (c *recConn) Heartbeat(ctx context.Context) error { return nil }
func (c *recConn) Bye(ctx context.Context) error       { return nil }

// lastTotal is the total of the newest state message, -1 before any.
func (c *recConn) lastTotal() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.totals) == 0 {
		return -1
	}
	return c.totals[len(c.totals)-1]
}

func (c *recConn) snapshot() (msgs [][]byte, at []time.Time, totals []int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.msgs...), append([]time.Time(nil), c.at...), append([]int64(nil), c.totals...)
}

// stuckConn takes the first message (it fits in the socket buffer) and then
// never completes a write: each one blocks until its deadline, like a peer
// that stopped reading.
type stuckConn struct {
	mu      sync.Mutex
	writes  int
	blocked time.Time // when the first blocked write started
}

func (c *stuckConn) Write(deadline time.Time, _ ...[]byte) error {
	c.mu.Lock()
	c.writes++
	first := c.writes == 1
	if !first && c.blocked.IsZero() {
		c.blocked = time.Now()
	}
	c.mu.Unlock()
	if first {
		return nil
	}
	time.Sleep(time.Until(deadline))
	return os.ErrDeadlineExceeded
}

func (c *stuckConn) Heartbeat(ctx context.Context) error {
	d, _ := ctx.Deadline()
	return c.Write(d, []byte(": ping\n\n"))
}
func (c *stuckConn) Bye(ctx context.Context) error { return nil }

type served struct {
	err  error
	done chan struct{}
	at   time.Time
}

// serve runs hub.Serve in a goroutine until ctx ends.
func serve(ctx context.Context, hub *live.Hub, conn live.Conn, f live.Format, u *game.User, opt live.ServeOptions) *served {
	s := &served{done: make(chan struct{})}
	go func() {
		s.err = hub.Serve(ctx, conn, f, u, opt)
		s.at = time.Now()
		close(s.done)
	}()
	return s
}

func waitCount(t *testing.T, hub *live.Hub, transport string, n int) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() string {
		if got := hub.Count()[transport]; got != n {
			return fmt.Sprintf("%d %s clients registered, want %d", got, transport, n)
		}
		return ""
	})
}

// waitAll waits until every conn's newest state shows total; it returns how
// long that took.
func waitAll(t *testing.T, conns []*recConn, total int64, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		behind := 0
		var example int64
		for _, c := range conns {
			if got := c.lastTotal(); got != total {
				behind++
				example = got
			}
		}
		if behind == 0 {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%d of %d clients never got total %d within %v (one shows %d)", behind, len(conns), total, timeout, example)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A client that stops reading neither delays nor starves the others: they
// get every final state promptly while its write hangs, and it is dropped
// once the write timeout passes.
func TestStuckClientDoesNotSlowOthers(t *testing.T) {
	e := startHub(t, live.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const writeTimeout = 2 * time.Second
	opt := live.ServeOptions{WriteTimeout: writeTimeout, Heartbeat: time.Minute}

	stuck := &stuckConn{}
	stuckServed := serve(ctx, e.hub, stuck, live.SSEGame, nil, opt)
	var fast []*recConn
	for i := range 20 {
		c := newRecConn()
		fast = append(fast, c)
		f := live.WSJSON
		if i%2 == 1 {
			f = live.SSEGame
		}
		serve(ctx, e.hub, c, f, nil, opt)
	}
	waitCount(t, e.hub, "ws", 10)
	waitCount(t, e.hub, "sse", 11)
	waitAll(t, fast, 0, 5*time.Second)

	// Changes while the stuck client's write hangs: every one reaches the
	// others within a frame or two.
	var took []time.Duration
	start := time.Now()
	for time.Since(start) < writeTimeout-400*time.Millisecond {
		total := e.change(1)
		took = append(took, waitAll(t, fast, total, writeTimeout))
	}
	stepsDuringStall := len(took)
	slices.Sort(took)
	median, worst := took[len(took)/2], took[len(took)-1]
	stuck.mu.Lock()
	blocked := stuck.blocked
	stuck.mu.Unlock()
	if blocked.IsZero() {
		t.Fatal("the stuck client was never sent an update")
	}
	if stepsDuringStall < 5 {
		t.Fatalf("only %d changes during the stall", stepsDuringStall)
	}
	// Were the others held up by the stuck write, each change would take
	// about the write timeout to reach them; a frame or two is what it takes.
	if median > 200*time.Millisecond || worst > writeTimeout/2 {
		t.Errorf("while one client was stuck the others got each state after %v (median), %v (worst)", median, worst)
	}
	t.Logf("%d changes during the stall; delivery to all 20 other clients took %v median, %v worst", stepsDuringStall, median, worst)

	// The stuck client is dropped after the write timeout, with a deadline
	// error, and leaves the hub.
	select {
	case <-stuckServed.done:
	case <-time.After(writeTimeout + 2*time.Second):
		t.Fatal("the stuck client was never disconnected")
	}
	if !errors.Is(stuckServed.err, os.ErrDeadlineExceeded) {
		t.Fatalf("stuck client ended with %v, want a write deadline", stuckServed.err)
	}
	if stuck := stuckServed.at.Sub(blocked); stuck < writeTimeout-50*time.Millisecond || stuck > writeTimeout+time.Second {
		t.Errorf("stuck client dropped after %v, want about %v", stuck, writeTimeout)
	}
	waitCount(t, e.hub, "sse", 10)

	// The others go on.
	total := e.change(5)
	waitAll(t, fast, total, time.Second)
}

// 1,000 clients all end on the final state after a burst of changes, each
// sees the totals only go up, and the same frame bytes reach everybody.
func TestThousandClientsGetTheFinalState(t *testing.T) {
	e := startHub(t, live.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 1000
	conns := make([]*recConn, n)
	servs := make([]*served, n)
	for i := range conns {
		conns[i] = newRecConn()
		servs[i] = serve(ctx, e.hub, conns[i], live.WSJSON, nil, live.ServeOptions{Heartbeat: time.Minute})
	}
	waitCount(t, e.hub, "ws", n)
	waitAll(t, conns, 0, 10*time.Second)

	// A burst: 300 changes from 6 writers, as fast as Redis takes them.
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for range 50 {
				e.change(1)
			}
		})
	}
	wg.Wait()
	start := time.Now()
	took := waitAll(t, conns, 300, 5*time.Second)
	t.Logf("all %d clients on the final state %v after the burst ended", n, took)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("final state took %v to reach everybody", d)
	}

	for i, c := range conns {
		_, _, totals := c.snapshot()
		for j := 1; j < len(totals); j++ {
			if totals[j] < totals[j-1] {
				t.Fatalf("client %d saw the total go back: %v", i, totals)
			}
		}
	}
	// Once the hub is quiet everybody holds the same bytes: one render per
	// change, shared. (A frame re-read after the burst may still be on its
	// way to some clients, hence the wait.)
	testenv.Eventually(t, 3*time.Second, func() string {
		var final []byte
		for i, c := range conns {
			msgs, _, _ := c.snapshot()
			last := msgs[len(msgs)-1]
			if final == nil {
				final = last
			} else if !bytes.Equal(final, last) {
				return fmt.Sprintf("client %d's last frame differs from client 0's:\n%s\n%s", i, final, last)
			}
		}
		return ""
	})
	cancel()
	for i, s := range servs {
		<-s.done
		if !live.IsGone(s.err) {
			t.Fatalf("client %d ended with %v", i, s.err)
		}
	}
	waitCount(t, e.hub, "ws", 0)
}

// Under a flood of change notifications each client gets at most about 20
// frames a second (coalesced, newest wins) and still ends on the newest state.
func TestFramesAreCoalesced(t *testing.T) {
	e := startHub(t, live.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var conns []*recConn
	for i := range 5 {
		c := newRecConn()
		conns = append(conns, c)
		f := live.WSJSON
		if i%2 == 1 {
			f = live.SSEGame
		}
		serve(ctx, e.hub, c, f, nil, live.ServeOptions{Heartbeat: time.Minute})
	}
	waitCount(t, e.hub, "ws", 3)
	waitAll(t, conns, 0, 5*time.Second)

	const flood = 2 * time.Second
	begin := time.Now()
	var notifications int
	var total int64
	for time.Since(begin) < flood {
		total = e.change(1)
		notifications++
	}
	end := time.Now()
	waitAll(t, conns, total, time.Second)
	for i, c := range conns {
		_, at, _ := c.snapshot()
		frames := 0
		for _, ts := range at {
			if !ts.Before(begin) && !ts.After(end) {
				frames++
			}
		}
		perSecond := float64(frames) / end.Sub(begin).Seconds()
		t.Logf("client %d: %d frames in %v for %d notifications (%.1f/s)", i, frames, end.Sub(begin).Round(time.Millisecond), notifications, perSecond)
		if perSecond > 22 {
			t.Errorf("client %d got %.1f frames per second, want at most ~20", i, perSecond)
		}
		if perSecond < 5 {
			t.Errorf("client %d got only %.1f frames per second during the flood: updates starve", i, perSecond)
		}
	}
	if notifications < 200 {
		t.Fatalf("only %d notifications: not a flood", notifications)
	}
}

// Personal fragments (your taps and rank) go only to that player's
// connections; every client gets its state at once on connect.
func TestPersonalFragmentsStayPersonal(t *testing.T) {
	e := startHub(t, live.Options{StatsInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bg := context.Background()
	ann := e.join("ann")
	bob := e.join("bob")
	annWS, annSSE, bobWS := newRecConn(), newRecConn(), newRecConn()
	opt := live.ServeOptions{Heartbeat: time.Minute}
	serve(ctx, e.hub, annWS, live.WSGame, &ann, opt)
	serve(ctx, e.hub, annSSE, live.SSEGame, &ann, opt)
	serve(ctx, e.hub, bobWS, live.WSGame, &bob, opt)
	waitCount(t, e.hub, "ws", 2)
	waitCount(t, e.hub, "sse", 1)

	// ann taps 7 (as the consumer would count them) and the game changes.
	if err := e.rdb.ZIncrBy(bg, store.KeyLeaderboard, 7, ann.ID).Err(); err != nil {
		t.Fatal(err)
	}
	total := e.change(7)
	all := []*recConn{annWS, annSSE, bobWS}
	waitAll(t, all, total, 2*time.Second)
	mine := regexp.MustCompile(`id="my-taps"[^>]*data-applied="7"`)
	testenv.Eventually(t, 2*time.Second, func() string {
		for _, c := range []*recConn{annWS, annSSE} {
			msgs, _, _ := c.snapshot()
			if !mine.Match(bytes.Join(msgs, nil)) {
				return "ann's connection never got her 7 taps"
			}
		}
		return ""
	})
	// Her update fell due with the frame of the change: one write has both.
	annWS.mu.Lock()
	together := false
	for _, call := range annWS.calls {
		together = together || (mine.Match(call) && totalRE.Match(call))
	}
	annWS.mu.Unlock()
	if !together {
		t.Error("ann's personal update and the frame it came with were not written together")
	}
	msgs, _, _ := bobWS.snapshot()
	if mine.Match(bytes.Join(msgs, nil)) {
		t.Fatal("bob got ann's personal fragment")
	}
	if !bytes.Contains(bytes.Join(msgs, nil), []byte(`id="my-taps" class="num num--w1" data-applied="0"`)) {
		t.Fatalf("bob never got his own (0 taps) on connect:\n%s", bytes.Join(msgs, []byte("\n")))
	}
	// SSE frames: every line is a field or blank; data: carries one line.
	sseMsgs, _, _ := annSSE.snapshot()
	for _, m := range sseMsgs {
		if !bytes.HasSuffix(m, []byte("\n\n")) {
			t.Fatalf("SSE event not terminated by a blank line: %q", m)
		}
		for _, line := range bytes.Split(bytes.TrimSuffix(m, []byte("\n\n")), []byte("\n")) {
			if !bytes.HasPrefix(line, []byte("event: ")) && !bytes.HasPrefix(line, []byte("data: <")) {
				t.Fatalf("SSE line that is no field: %q in %q", line, m)
			}
		}
	}
}

// Clients that leave (context ended, failed write, server closing) leave no
// goroutine behind.
func TestNoGoroutineLeak(t *testing.T) {
	e := startHub(t, live.Options{StatsInterval: time.Millisecond})
	ctx := context.Background()
	u := e.join("leaky")
	opt := live.ServeOptions{Heartbeat: 20 * time.Millisecond, WriteTimeout: 200 * time.Millisecond}

	// Warm up (Redis pool, pub/sub), then take the baseline.
	wctx, wcancel := context.WithCancel(ctx)
	w := serve(wctx, e.hub, newRecConn(), live.WSGame, &u, opt)
	waitCount(t, e.hub, "ws", 1)
	e.change(1)
	time.Sleep(100 * time.Millisecond)
	wcancel()
	<-w.done
	waitCount(t, e.hub, "ws", 0)
	base := settledGoroutines()

	for round := range 3 {
		cctx, cancel := context.WithCancel(ctx)
		var servs []*served
		formats := []live.Format{live.SSEJSON, live.SSEGame, live.SSEBoard, live.WSJSON, live.WSGame, live.WSBoard}
		for i := range 300 {
			var conn live.Conn = newRecConn()
			if i%10 == 0 {
				conn = &stuckConn{}
			}
			var user *game.User
			if i%3 == 0 {
				user = &u
			}
			servs = append(servs, serve(cctx, e.hub, conn, formats[i%len(formats)], user, opt))
		}
		testenv.Eventually(t, 10*time.Second, func() string {
			c := e.hub.Count()
			if c["ws"]+c["sse"] < 270 {
				return fmt.Sprintf("clients %v", c)
			}
			return ""
		})
		for range 5 {
			e.change(1)
			time.Sleep(30 * time.Millisecond)
		}
		cancel()
		for _, s := range servs {
			<-s.done
		}
		waitCount(t, e.hub, "ws", 0)
		waitCount(t, e.hub, "sse", 0)
		noLeak(t, base, fmt.Sprintf("round %d, after 300 clients left", round))
	}

	// Closing the hub says bye to everyone, refuses newcomers, and leaves
	// nothing behind either.
	var servs []*served
	for range 50 {
		servs = append(servs, serve(ctx, e.hub, newRecConn(), live.WSGame, &u, opt))
	}
	waitCount(t, e.hub, "ws", 50)
	e.hub.Close()
	for _, s := range servs {
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			t.Fatal("a client outlived Hub.Close")
		}
	}
	if err := e.hub.Serve(ctx, newRecConn(), live.WSGame, nil, opt); !errors.Is(err, live.ErrClosing) {
		t.Fatalf("Serve after Close: %v", err)
	}
	noLeak(t, base, "after Hub.Close")
}

// noLeak waits for the goroutine count to come back to base (with a small
// tolerance for runtime and pool goroutines that come and go).
func noLeak(t *testing.T, base int, when string) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, func() string {
		if n := settledGoroutines(); n > base+5 {
			return fmt.Sprintf("%s: %d goroutines, %d before", when, n, base)
		}
		return ""
	})
}

// settledGoroutines is runtime.NumGoroutine once it stopped falling.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m >= n {
			return m
		}
		n = m
	}
	return n
}

// A change that comes sooner than StatsInterval after the last personal
// update still reaches the players' own numbers (rank, counted taps), a
// moment later; they are never left stale until some later change.
func TestPersonalStatsCatchUp(t *testing.T) {
	e := startHub(t, live.Options{StatsInterval: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bg := context.Background()
	ann := e.join("ann")
	annWS := newRecConn()
	serve(ctx, e.hub, annWS, live.WSGame, &ann, live.ServeOptions{Heartbeat: time.Minute})
	waitCount(t, e.hub, "ws", 1)
	rank := func(want string) func() string {
		any := regexp.MustCompile(`id="my-rank"[^>]*>([^<]*)<`)
		return func() string {
			msgs, _, _ := annWS.snapshot()
			for i := len(msgs) - 1; i >= 0; i-- {
				if m := any.FindSubmatch(msgs[i]); m != nil {
					if string(m[1]) == want {
						return ""
					}
					return fmt.Sprintf("ann's newest personal update shows rank %s, want %s", m[1], want)
				}
			}
			return "ann got no personal update"
		}
	}
	// ann taps: she is first.
	e.rdb.ZIncrBy(bg, store.KeyLeaderboard, 5, ann.ID)
	e.change(5)
	testenv.Eventually(t, 2*time.Second, rank("1"))
	// Right after, two others overtake her: the next frame comes within
	// StatsInterval of her last personal update, so it is sent later.
	e.rdb.ZIncrBy(bg, store.KeyLeaderboard, 9, "someone")
	e.rdb.ZIncrBy(bg, store.KeyLeaderboard, 8, "someone-else")
	e.change(17)
	testenv.Eventually(t, 2*time.Second, rank("3"))
}

// While the state is rebuilt, pages never go back within a round, but a
// new round (a reset, scores at zero) is shown: it is ahead, not behind.
func TestCatchingUpShowsANewRound(t *testing.T) {
	e := startHub(t, live.Options{CatchingUp: func() bool { return true }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newRecConn()
	serve(ctx, e.hub, c, live.WSJSON, nil, live.ServeOptions{Heartbeat: time.Minute})
	waitCount(t, e.hub, "ws", 1)
	set := func(round, blue string) {
		bg := context.Background()
		if err := e.rdb.MSet(bg, store.KeyRound, round, store.KeyBlueScore, blue).Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.st.Notify(bg); err != nil {
			t.Fatal(err)
		}
	}
	shows := func(round, blue int64) func() string {
		return func() string {
			msgs, _, _ := c.snapshot()
			for i := len(msgs) - 1; i >= 0; i-- {
				var s game.Snapshot
				if json.Unmarshal(msgs[i], &s) == nil && s.GameState.TotalTaps >= 0 {
					if s.GameState.Round == round && s.GameState.BlueScore == blue {
						return ""
					}
					return fmt.Sprintf("newest state: round %d blue %d, want round %d blue %d", s.GameState.Round, s.GameState.BlueScore, round, blue)
				}
			}
			return "no state"
		}
	}
	set("1", "10")
	testenv.Eventually(t, 2*time.Second, shows(1, 10))
	set("1", "4") // a half-rebuilt read: held back
	time.Sleep(300 * time.Millisecond)
	if msg := shows(1, 10)(); msg != "" {
		t.Fatalf("a read behind the one shown was sent: %s", msg)
	}
	set("2", "0") // the next round starts at zero
	testenv.Eventually(t, 2*time.Second, shows(2, 0))
}

// heldStats is the store with one Stats read held, when armed, after it
// read: a slow read that started before a newer one and ends after it.
type heldStats struct {
	*store.Store
	armed   atomic.Bool
	reading chan struct{} // the held read has read
	release chan struct{}
}

func (s *heldStats) Stats(ctx context.Context, ids []string) (map[string]game.PlayerStats, error) {
	st, err := s.Store.Stats(ctx, ids)
	if s.armed.CompareAndSwap(true, false) {
		close(s.reading)
		<-s.release
	}
	return st, err
}

// gatedConn is a recConn whose first write waits for open.
type gatedConn struct {
	*recConn
	open  chan struct{}
	first sync.Once
}

func (c *gatedConn) Write(deadline time.Time, msgs ...[]byte) error {
	c.first.Do(func() { <-c.open })
	return c.recConn.Write(deadline, msgs...)
}

// A player's own numbers never go back on their page: the hub's read of
// their stats that started before the connection's own first read, and
// ends after it, is not written after it. (The page takes a lower count for
// an admin reset and starts over, counting taps in flight twice.)
func TestPersonalUpdatesNeverGoBack(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client()
	src := &heldStats{Store: store.New(rdb), reading: make(chan struct{}), release: make(chan struct{})}
	hub := live.NewHub(src, slog.New(slog.NewTextHandler(io.Discard, nil)), live.Options{StatsInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hub.Run(ctx)
	bg := context.Background()
	ann, err := src.Join(bg, "ann", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rdb.ZIncrBy(bg, store.KeyLeaderboard, 5, ann.ID)

	// Ann's page connects; its first write (the state) is slow.
	conn := &gatedConn{recConn: newRecConn(), open: make(chan struct{})}
	serve(ctx, hub, conn, live.WSGame, &ann, live.ServeOptions{Heartbeat: time.Minute})
	waitCount(t, hub, "ws", 1)
	// The hub reads her 5 taps for a frame, and its read is held.
	src.armed.Store(true)
	rdb.IncrBy(bg, store.KeyTotalTaps, 5)
	if err := src.Notify(bg); err != nil {
		t.Fatal(err)
	}
	<-src.reading
	// She taps 3 more; her connection reads 8 and writes it.
	rdb.ZIncrBy(bg, store.KeyLeaderboard, 3, ann.ID)
	close(conn.open)
	applied := regexp.MustCompile(`id="my-taps"[^>]*data-applied="(\d+)"`)
	shown := func() []string {
		msgs, _, _ := conn.snapshot()
		var out []string
		for _, m := range msgs {
			if a := applied.FindSubmatch(m); a != nil {
				out = append(out, string(a[1]))
			}
		}
		return out
	}
	testenv.Eventually(t, 2*time.Second, func() string {
		if got := shown(); len(got) == 0 || got[len(got)-1] != "8" {
			return fmt.Sprintf("her page got %v", got)
		}
		return ""
	})
	// The held read of 5 ends now.
	close(src.release)
	rdb.IncrBy(bg, store.KeyTotalTaps, 3)
	if err := src.Notify(bg); err != nil {
		t.Fatal(err)
	}
	waitAll(t, []*recConn{conn.recConn}, 8, 2*time.Second)
	time.Sleep(50 * time.Millisecond)
	got := shown()
	for i := 1; i < len(got); i++ {
		prev, _ := strconv.Atoi(got[i-1])
		if cur, _ := strconv.Atoi(got[i]); cur < prev {
			t.Fatalf("her own count went back: %v", got)
		}
	}
}
