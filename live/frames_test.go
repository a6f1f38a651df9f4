package live_test

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/live"
	"github.com/tapwars/tapwars/store"
)

// gateConn records messages like recConn, but each write waits while the
// gate is shut, like a client that reads slowly.
type gateConn struct {
	*recConn
	open atomic.Pointer[chan struct{}] // closed: writes go through
}

func (g *gateConn) shut() chan struct{} {
	ch := make(chan struct{})
	g.open.Store(&ch)
	return ch
}

func (g *gateConn) Write(deadline time.Time, msgs ...[]byte) error {
	select {
	case <-*g.open.Load():
	case <-time.After(time.Until(deadline)):
		return os.ErrDeadlineExceeded
	}
	return g.recConn.Write(deadline, msgs...)
}

var boardRowsRE = regexp.MustCompile(`class="board__taps"><span [^>]*data-n="(\d+)"`)

// After its first, whole frame a page gets only the elements that changed;
// the leaderboard changes at most once per BoardInterval, and its last
// change always arrives. JSON streams keep getting the whole state (but
// for the users list, while the number online stays the same).
func TestFramesCarryOnlyWhatChanged(t *testing.T) {
	const boardEvery = 400 * time.Millisecond
	e := startHub(t, live.Options{BoardInterval: boardEvery})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bg := context.Background()
	ann := e.join("ann")
	page, js := newRecConn(), newRecConn()
	opt := live.ServeOptions{Heartbeat: time.Minute}
	serve(ctx, e.hub, page, live.WSGame, nil, opt)
	serve(ctx, e.hub, js, live.WSJSON, nil, opt)
	waitCount(t, e.hub, "ws", 2)
	waitAll(t, []*recConn{page, js}, 0, 5*time.Second)
	msgs, _, _ := page.snapshot()
	first := msgs[0]
	for _, id := range []string{"blue-score", "red-score", "total-taps", "blue-online", "red-online", "tug-bar", "leaderboard"} {
		if !bytes.Contains(first, []byte(`id="`+id+`"`)) {
			t.Fatalf("first frame lacks #%s: %s", id, first)
		}
	}

	// Only the total changes: only the total is sent.
	total := e.change(5)
	waitAll(t, []*recConn{page, js}, total, 5*time.Second)
	msgs, _, _ = page.snapshot()
	delta := msgs[len(msgs)-1]
	if !bytes.Contains(delta, []byte(`id="total-taps"`)) || bytes.Contains(delta, []byte(`id="leaderboard"`)) || bytes.Contains(delta, []byte(`id="blue-score"`)) {
		t.Fatalf("frame after a change of the total only: %s", delta)
	}
	if len(delta)*4 > len(first) {
		t.Errorf("delta frame is %d bytes, whole frame %d", len(delta), len(first))
	}
	jmsgs, _, _ := js.snapshot()
	if last := jmsgs[len(jmsgs)-1]; !bytes.Contains(last, []byte(`"leaderboard":`)) || !bytes.Contains(last, []byte(`"blueScore":`)) {
		t.Fatalf("JSON clients must get the whole state: %s", last)
	}
	// ... but for the users list, which the first frame carries, and then
	// only a frame where the number online changed (ann's join may come
	// after the first read): one more change, with ann online throughout.
	total = e.change(1)
	waitAll(t, []*recConn{page, js}, total, 5*time.Second)
	jmsgs, _, _ = js.snapshot()
	if !bytes.Contains(jmsgs[0], []byte(`"users":`)) || bytes.Contains(jmsgs[len(jmsgs)-1], []byte(`"users":`)) {
		t.Fatalf("JSON frames: first %s, last %s; want users in the first, not the last", jmsgs[0], jmsgs[len(jmsgs)-1])
	}
	msgs, _, _ = page.snapshot()

	// Ten leaderboard changes in quick succession: the rows change at most
	// once per boardEvery, and end on the last count.
	n0 := len(msgs)
	start := time.Now()
	for i := 1; i <= 10; i++ {
		if err := e.rdb.ZAdd(bg, store.KeyLeaderboard, redis.Z{Score: float64(i), Member: ann.ID}).Err(); err != nil {
			t.Fatal(err)
		}
		total = e.change(1)
		time.Sleep(30 * time.Millisecond)
	}
	testenv.Eventually(t, 5*time.Second, func() string {
		msgs, _, _ := page.snapshot()
		m := boardRowsRE.FindAllSubmatch(msgs[len(msgs)-1], -1)
		if len(m) != 1 || string(m[0][1]) != "10" {
			return "the page's newest frame does not show ann's 10 taps: " + strconv.Quote(string(msgs[len(msgs)-1]))
		}
		return ""
	})
	msgs, at, _ := page.snapshot()
	var boards []time.Time
	for i := n0; i < len(msgs); i++ {
		if bytes.Contains(msgs[i], []byte(`id="leaderboard"`)) {
			boards = append(boards, at[i])
		}
	}
	t.Logf("%d frames, %d with the leaderboard, over %v", len(msgs)-n0, len(boards), time.Since(start).Round(time.Millisecond))
	for i := 1; i < len(boards); i++ {
		if gap := boards[i].Sub(boards[i-1]); gap < boardEvery-50*time.Millisecond {
			t.Errorf("leaderboard frames %v apart, want >= %v", gap, boardEvery)
		}
	}
	if len(boards) > 3 {
		t.Errorf("%d leaderboard frames for changes over ~300 ms, want at most 3", len(boards))
	}
	waitAll(t, []*recConn{page}, total, 5*time.Second)
}

// A client that fell behind (it was still writing when newer frames came)
// gets the whole state next, not a delta it cannot apply.
func TestClientBehindGetsWholeFrame(t *testing.T) {
	e := startHub(t, live.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := &gateConn{recConn: newRecConn()}
	close(g.shut())
	serve(ctx, e.hub, g, live.WSGame, nil, live.ServeOptions{Heartbeat: time.Minute})
	waitCount(t, e.hub, "ws", 1)
	waitAll(t, []*recConn{g.recConn}, 0, 5*time.Second)

	gate := g.shut() // the next write waits
	e.change(1)
	time.Sleep(200 * time.Millisecond)
	e.change(1)
	time.Sleep(200 * time.Millisecond)
	total := e.change(1)
	time.Sleep(100 * time.Millisecond)
	close(gate)
	waitAll(t, []*recConn{g.recConn}, total, 5*time.Second)
	msgs, _, _ := g.snapshot()
	last := msgs[len(msgs)-1]
	for _, id := range []string{"blue-score", "red-score", "total-taps", "leaderboard"} {
		if !bytes.Contains(last, []byte(`id="`+id+`"`)) {
			t.Fatalf("a client that skipped frames got a partial frame (no #%s): %s", id, last)
		}
	}
}

// beatConn counts heartbeats and byes.
type beatConn struct {
	*recConn
	beats, byes atomic.Int64
}

func (b *beatConn) Heartbeat(ctx context.Context) error { b.beats.Add(1); return nil }
func (b *beatConn) Bye(ctx context.Context) error       { b.byes.Add(1); return nil }

// An idle client gets a heartbeat every interval, and Hub.Close says bye to
// it and ends its Serve; a client whose context ends just returns.
func TestIdleClientGetsHeartbeatsAndBye(t *testing.T) {
	e := startHub(t, live.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := &beatConn{recConn: newRecConn()}
	s := serve(ctx, e.hub, b, live.SSEGame, nil, live.ServeOptions{Heartbeat: 30 * time.Millisecond})
	gone := &beatConn{recConn: newRecConn()}
	gctx, gcancel := context.WithCancel(context.Background())
	g := serve(gctx, e.hub, gone, live.WSJSON, nil, live.ServeOptions{Heartbeat: time.Minute})
	waitCount(t, e.hub, "sse", 1)
	waitCount(t, e.hub, "ws", 1)
	time.Sleep(300 * time.Millisecond)
	if n := b.beats.Load(); n < 5 || n > 11 {
		t.Fatalf("%d heartbeats in 300 ms at one per 30 ms", n)
	}
	gcancel()
	select {
	case <-g.done:
		if g.err != nil {
			t.Fatalf("client whose context ended: %v", g.err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	e.hub.Close()
	select {
	case <-s.done:
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return after Hub.Close")
	}
	if b.byes.Load() != 1 || gone.byes.Load() != 0 {
		t.Fatalf("byes: %d to the open client, %d to the one that left; want 1 and 0", b.byes.Load(), gone.byes.Load())
	}
}
