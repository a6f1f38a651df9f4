package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/live"
)

// The bare server's snapshot follows the store's rules: players with taps
// ranked by taps (ties share a rank and order by id, descending), players
// online most recently seen first, teams balanced, open play, default teams.
func TestScoreboardSnapshot(t *testing.T) {
	s := newScoreboard()
	t0 := time.UnixMilli(1_000_000)
	var ps []*boardPlayer
	for i := range 5 {
		ps = append(ps, s.join("p"+string(rune('0'+i)), t0))
	}
	for i, n := range []int64{3, 3, 5, 0, 1} {
		if n > 0 && !s.tap(ps[i].token, n, t0.Add(time.Duration(i+1)*time.Millisecond)) {
			t.Fatalf("tap of p%d refused", i)
		}
	}
	if s.tap("nobody", 1, t0) {
		t.Fatal("a tap with an unknown token was counted")
	}
	snap := s.snapshot(t0.Add(time.Second), 100)
	st := snap.GameState
	if st.TotalTaps != 12 || st.BlueScore+st.RedScore != 12 || st.ActiveUsers != 5 || st.BlueOnline != 3 || st.RedOnline != 2 || st.LastUpdated != t0.UnixMilli()+5 {
		t.Fatalf("state %+v", st)
	}
	var blue int64
	for i, n := range []int64{3, 3, 5, 0, 1} {
		if ps[i].Team == game.Blue {
			blue += n
		}
	}
	if st.BlueScore != blue {
		t.Fatalf("blue score %d, want %d", st.BlueScore, blue)
	}
	tied := []string{ps[0].ID, ps[1].ID}
	slices.Sort(tied)
	var got []string
	var ranks []int
	for _, e := range snap.Leaderboard {
		got = append(got, e.ID)
		ranks = append(ranks, e.Rank)
	}
	if want := []string{ps[2].ID, tied[1], tied[0], ps[4].ID}; !slices.Equal(got, want) || !slices.Equal(ranks, []int{1, 2, 2, 4}) {
		t.Fatalf("leaderboard %v ranks %v, want %v ranks 1 2 2 4", got, ranks, want)
	}
	if len(snap.Users) != 5 || snap.Users[0].ID != ps[4].ID || snap.Users[1].ID != ps[2].ID {
		t.Fatalf("users online, most recent first: %+v", snap.Users)
	}
	if snap.Round.Mode != game.ModeOpen || snap.Teams != game.DefaultTeams() {
		t.Fatalf("round %+v teams %+v", snap.Round, snap.Teams)
	}
	if top := s.snapshot(t0.Add(time.Second), 1); len(top.Leaderboard) != 1 {
		t.Fatalf("top 1: %d entries", len(top.Leaderboard))
	}
	if later := s.snapshot(t0.Add(2*time.Minute), 100); later.GameState.ActiveUsers != 0 || len(later.Users) != 0 {
		t.Fatalf("after the online window: %d online, %d listed", later.GameState.ActiveUsers, len(later.Users))
	}
}

// recorder is a live connection that keeps what it was sent.
type recorder struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (r *recorder) write(deadline time.Time, msg []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, bytes.Clone(msg))
	return nil
}

func (r *recorder) waitFor(t *testing.T, n int) [][]byte {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		r.mu.Lock()
		msgs := slices.Clone(r.msgs)
		r.mu.Unlock()
		if len(msgs) >= n {
			return msgs
		}
	}
	t.Fatalf("fewer than %d messages", n)
	return nil
}

// A client gets the whole state first, then what changed (live.Render's
// delta); a leaderboard change within 250 ms of the last one is held back
// and falls due later.
func TestScoreboardFramesAreTheHubs(t *testing.T) {
	s := newScoreboard()
	now := time.Now()
	a, b := s.join("ann", now), s.join("bob", now)
	s.tap(a.token, 2, now)
	f := newFanout(s)
	f1, _ := f.next(s.snapshot(now, 100), now)
	f.publish(f1)

	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.serve(ctx, live.SSEGame, rec) }()
	msgs := rec.waitFor(t, 1)
	if !bytes.Equal(msgs[0], f1.rendered().Whole(live.SSEGame)) {
		t.Fatalf("first message is not the whole frame:\n%s", msgs[0])
	}

	// Bob overtakes Ann at once: the scores move, the board waits.
	s.tap(b.token, 3, now)
	later := now.Add(10 * time.Millisecond)
	f2, due := f.next(s.snapshot(later, 100), later)
	if due.IsZero() || !due.Equal(now.Add(boardEvery)) || f2.view.Board[0].ID != a.ID || f2.view.Snapshot.Leaderboard[0].ID != b.ID {
		t.Fatalf("board change not held back: due %v, shown %+v, state %+v", due, f2.view.Board, f2.view.Snapshot.Leaderboard)
	}
	f.publish(f2)
	msgs = rec.waitFor(t, 2)
	want := f2.rendered().Delta(live.SSEGame)
	if want == nil || !bytes.Equal(msgs[1], want) || len(want) >= len(f2.rendered().Whole(live.SSEGame)) || !bytes.Contains(want, []byte(`data-n="5"`)) {
		t.Fatalf("second message is not the delta:\n%s", msgs[1])
	}
	if bytes.Contains(want, []byte(`id="leaderboard"`)) {
		t.Fatalf("the held-back leaderboard was sent:\n%s", want)
	}
	dueAt := now.Add(boardEvery)
	f3, due := f.next(s.snapshot(dueAt, 100), dueAt)
	if !due.IsZero() || f3.view.Board[0].ID != b.ID {
		t.Fatalf("the held-back board did not show when due: due %v, %+v", due, f3.view.Board)
	}
	cancel()
	<-done
}

// tapbench joins, taps, follows the live endpoints and checks the counts
// against the bare server as against tapwars.
func TestScoreboardServesTapbench(t *testing.T) {
	s := newScoreboard()
	f := newFanout(s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.run(ctx)
	srv := httptest.NewServer(s.handler(f))
	defer srv.Close()
	hc := srv.Client()

	players, _, err := join(ctx, hc, srv.URL, 20, "p")
	if err != nil {
		t.Fatal(err)
	}
	epoch := time.Now()
	var measuring atomic.Bool
	liveCtx, stopLive := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var clients []*liveClient
	for _, kind := range []string{"sse", "ws"} {
		for _, format := range []string{"html", "json"} {
			c := &liveClient{kind: kind}
			c.last.Store(-1)
			clients = append(clients, c)
			connected := make(chan error, 1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if kind == "sse" {
					c.runSSE(liveCtx, hc, srv.URL, format, epoch, &measuring, func(err error) { connected <- err })
				} else {
					c.runWS(liveCtx, hc, srv.URL, format, epoch, &measuring, func(err error) { connected <- err })
				}
			}()
			if err := <-connected; err != nil {
				t.Fatalf("%s %s: %v", kind, format, err)
			}
		}
	}
	tp := &tapper{hc: hc, players: players, count: 2, epoch: epoch, byPlayer: make([]int64, len(players)), status: map[string]int64{}, lat: newHist()}
	ph := tp.run(ctx, srv.URL+"/api/tap", 300*time.Millisecond, 4, 200, true, "bare")
	if ph.Requests == 0 || len(ph.Errors) != 0 {
		t.Fatalf("taps: %+v", ph)
	}
	total, err := totalTaps(hc, srv.URL)
	if err != nil || total != tp.acked {
		t.Fatalf("total %d (%v), acknowledged %d", total, err, tp.acked)
	}
	for i, p := range players {
		if n, err := tapCount(hc, srv.URL, p); err != nil || n != tp.byPlayer[i] {
			t.Fatalf("player %d: %d taps (%v), want %d", i, n, err, tp.byPlayer[i])
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		seen := 0
		for _, c := range clients {
			if c.last.Load() == total {
				seen++
			}
		}
		if seen == len(clients) {
			break
		}
		if time.Now().After(deadline) {
			for _, c := range clients {
				t.Errorf("%s client: last total %d of %d, %d states, error %v", c.kind, c.last.Load(), total, c.states.Load(), c.firstErr.Load())
			}
			t.FailNow()
		}
	}
	stopLive()
	wg.Wait()
	res, err := hc.Post(srv.URL+"/api/tap", "application/json", nil)
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a tap without a token: %v %v", res, err)
	}
	res.Body.Close()
}
