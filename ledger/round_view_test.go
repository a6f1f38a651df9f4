package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/ledger"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/stream"
)

// newGame is a logged game on a fresh redis-server and kfake broker.
func newGame(t *testing.T) (*ledger.Game, *store.Store) {
	t.Helper()
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	p, err := stream.NewProducer(stream.Config{Brokers: k.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	st := store.New(r.Client())
	return ledger.New(st, stream.NewFacts(p)), st
}

// view is a round view with short timings; run starts its heartbeat.
func view(t *testing.T, st *store.Store, run bool) *ledger.RoundView {
	t.Helper()
	v := ledger.NewRoundView(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	v.Lease, v.Margin, v.Every = time.Second, 250*time.Millisecond, 50*time.Millisecond
	if err := v.Heartbeat(context.Background()); err != nil {
		t.Fatal(err)
	}
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); v.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return v
}

// startTimed starts a timed round of secs seconds, without countdown, in
// the background.
func startTimed(g *ledger.Game, secs int64) (done <-chan error, at time.Time) {
	out := make(chan error, 1)
	now := time.Now()
	sc := game.RoundSchedule{Mode: game.ModeTimed, CountdownAt: now.UnixMilli(), StartsAt: now.UnixMilli(), EndsAt: now.UnixMilli() + secs*1000}
	go func() { _, err := g.StartTimedRound(context.Background(), sc, now); out <- err }()
	return out, now
}

func hold(t *testing.T, v *ledger.RoundView) ledger.RoundHold {
	t.Helper()
	h, err := v.Hold()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A timed round is logged only once every instance has switched to it
// and answered every tap it judged by the round before: a tap held by
// another instance holds the round back; meanwhile every instance sees the
// round as announced and not started.
func TestAnnouncementWaitsForTapsInFlight(t *testing.T) {
	g, st := newGame(t)
	a, b := view(t, st, true), view(t, st, true)
	inFlight := hold(t, b) // open play: a tap on its way to Kafka
	if inFlight.Schedule != nil || inFlight.Round != 0 {
		t.Fatalf("open play held as %+v", inFlight)
	}
	started, _ := startTimed(g, 5)
	time.Sleep(400 * time.Millisecond)
	select {
	case err := <-started:
		t.Fatalf("the round started (%v) while a tap judged by the open round was unanswered", err)
	default:
	}
	for _, v := range []*ledger.RoundView{a, b} {
		h := hold(t, v)
		h.Done()
		if !h.Schedule.Timed() || h.Schedule.Number != 1 || h.Round != 0 {
			t.Fatalf("during the announcement a tap is judged by %+v round %d, want round 1 announced, not started", h.Schedule, h.Round)
		}
	}
	released := time.Now()
	if !inFlight.Done() {
		t.Fatal("a tap acknowledged while its instance is registered was not confirmed")
	}
	select {
	case err := <-started:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("the round started %v after the last tap of the open round was answered", time.Since(released).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		t.Fatal("the round did not start once the tap was answered")
	}
	testenv.Eventually(t, 2*time.Second, func() string {
		h := hold(t, b)
		h.Done()
		if h.Round != 1 || !h.Schedule.Timed() {
			return fmt.Sprintf("b still judges by round %d, schedule %+v", h.Round, h.Schedule)
		}
		return ""
	})
}

// An instance that cannot reach Redis stops answering 2xx before its
// registration ends, and an announcement goes on without it then.
func TestSilentInstanceIsWaitedForUntilItsLeaseEnds(t *testing.T) {
	g, st := newGame(t)
	view(t, st, true)
	silent := view(t, st, false) // one heartbeat, then nothing: cut off
	beat := time.Now()
	h := hold(t, silent)
	started, _ := startTimed(g, 5)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	took := time.Since(beat)
	if took < silent.Lease-100*time.Millisecond || took > silent.Lease+time.Second {
		t.Fatalf("the round started %v after the silent instance's last heartbeat; its lease is %v", took, silent.Lease)
	}
	if h.Done() {
		t.Fatal("a tap of the silent instance was confirmed after its registration ended")
	}
	_, err := silent.Hold()
	if game.ErrorCode(err) != game.EUNAVAILABLE || !strings.Contains(err.Error(), "cannot be confirmed") {
		t.Fatalf("a tap on the silent instance: %v, want 503 the round cannot be confirmed", err)
	}
}

// An instance that never answers a tap it holds makes the announcement
// fail after ViewWait, naming it; the round is withdrawn.
func TestAnnouncementGivesUpAndWithdraws(t *testing.T) {
	g, st := newGame(t)
	g.ViewWait = 700 * time.Millisecond
	stuck := view(t, st, true)
	h := hold(t, stuck)
	defer h.Done()
	started, _ := startTimed(g, 5)
	err := <-started
	if game.ErrorCode(err) != game.EUNAVAILABLE || !strings.Contains(err.Error(), stuck.ID) {
		t.Fatalf("announcement past a stuck instance: %v", err)
	}
	sc, err := st.RoundSchedule(context.Background())
	if err != nil || sc != nil {
		t.Fatalf("after the failed announcement the schedule is %+v (%v), want open play", sc, err)
	}
	testenv.Eventually(t, 2*time.Second, func() string {
		h := hold(t, stuck)
		h.Done()
		if h.Schedule != nil {
			return "still judged by the withdrawn round"
		}
		return ""
	})
}

// An instance that stops leaves the registry: announcements do not wait
// for it.
func TestStoppedInstanceLeaves(t *testing.T) {
	_, st := newGame(t)
	v := ledger.NewRoundView(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); v.Run(ctx) }()
	testenv.Eventually(t, 2*time.Second, func() string {
		if ids, _ := st.RoundUnseen(context.Background(), store.Seen{Stamp: ledger.Announced(1)}); len(ids) != 1 {
			return "not registered"
		}
		return ""
	})
	cancel()
	<-done
	if ids, err := st.RoundUnseen(context.Background(), store.Seen{Stamp: ledger.Announced(1)}); err != nil || len(ids) != 0 {
		t.Fatalf("after it stopped: %v %v", ids, err)
	}
	if _, err := v.Hold(); err == nil {
		t.Fatal("a stopped view still judges taps")
	}
}

// A kick is logged only once every instance reloaded its kicked players
// and answered the taps it judged before: a tap held by another instance
// holds the kick back.
func TestKickWaitsForTapsInFlight(t *testing.T) {
	g, st := newGame(t)
	g.KickWait = 100 * time.Millisecond // no consumer applies it here
	u, err := g.Join(context.Background(), "tapper", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a, b := view(t, st, true), view(t, st, true)
	reloaded := make(chan struct{}, 4)
	for _, v := range []*ledger.RoundView{a, b} {
		v.OnKicks(func(context.Context) error { reloaded <- struct{}{}; return nil })
	}
	inFlight := hold(t, b)
	kicked := make(chan error, 1)
	go func() { _, err := g.Kick(context.Background(), u.ID, time.Now()); kicked <- err }()
	time.Sleep(400 * time.Millisecond)
	select {
	case err := <-kicked:
		t.Fatalf("the kick was logged (%v) while a tap judged before it was unanswered", err)
	default:
	}
	if len(reloaded) != 2 {
		t.Fatalf("%d of 2 instances reloaded their kicked players", len(reloaded))
	}
	inFlight.Done()
	select {
	case err := <-kicked:
		if !errors.Is(err, store.ErrNotApplied) { // logged, and nobody applies it
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the kick was not logged once the tap was answered")
	}
}
