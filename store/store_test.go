package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/store"
)

func newStore(t *testing.T) (*store.Store, *testenv.Redis) {
	t.Helper()
	r := testenv.StartRedis(t)
	return store.New(r.Client()), r
}

func TestJoinBalancesTeamsUnderConcurrency(t *testing.T) {
	st, _ := newStore(t)
	ctx := context.Background()
	const n = 200
	var wg sync.WaitGroup
	teams := make(chan game.Team, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := st.Join(ctx, fmt.Sprintf("player %d", i), time.Now())
			if err != nil {
				t.Error(err)
				return
			}
			teams <- u.Team
		}()
	}
	wg.Wait()
	close(teams)
	count := map[game.Team]int{}
	for tm := range teams {
		count[tm]++
	}
	if count[game.Blue] != n/2 || count[game.Red] != n/2 {
		t.Fatalf("teams not balanced: %v", count)
	}
	snap, err := st.Snapshot(ctx, 10, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if snap.GameState.ActiveUsers != n || snap.GameState.BlueOnline != n/2 {
		t.Fatalf("online: %+v", snap.GameState)
	}
}

func TestJoinRejectsBadNames(t *testing.T) {
	st, _ := newStore(t)
	for _, name := range []string{"", "   ", "\u3164", strings.Repeat("a", 25), "аdmin", "tab\there"} {
		if _, err := st.Join(context.Background(), name, time.Now()); !errors.Is(err, game.ErrInvalidName) {
			t.Errorf("Join(%q) = %v, want ErrInvalidName", name, err)
		}
	}
	u, err := st.Join(context.Background(), "  Zoë Ödegaard-3.5_x  ", time.Now())
	if err != nil || u.Username != "Zoë Ödegaard-3.5_x" {
		t.Fatalf("unicode name: %+v %v", u, err)
	}
}

// apply is a helper applying taps for a partition range.
func apply(t *testing.T, st *store.Store, p int32, from, next int64, taps ...game.PlayerTaps) game.ApplyResult {
	t.Helper()
	res, err := st.Apply(context.Background(), game.Batch{Topic: "game-taps", Partition: p, From: from, Next: next, Start: true, Taps: taps, Now: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestApplyCountsExactlyOnce(t *testing.T) {
	st, r := newStore(t)
	ctx := context.Background()
	a, _ := st.Join(ctx, "alice", time.Now())
	b, _ := st.Join(ctx, "bob", time.Now())
	if a.Team == b.Team {
		t.Fatalf("two players on one team: %v %v", a.Team, b.Team)
	}

	res := apply(t, st, 0, 0, 10, game.PlayerTaps{UserID: a.ID, Count: 7}, game.PlayerTaps{UserID: b.ID, Count: 3}, game.PlayerTaps{UserID: "ghost", Count: 5})
	if res.Status != game.Applied || res.Applied != 10 || res.Unknown != 5 {
		t.Fatalf("first apply: %+v", res)
	}
	// The same offsets again: nothing changes.
	if res := apply(t, st, 0, 0, 10, game.PlayerTaps{UserID: a.ID, Count: 7}); res.Status != game.Duplicate || res.Offset != 10 {
		t.Fatalf("duplicate: %+v", res)
	}
	// Partly applied before: refused with the stored offset.
	if res := apply(t, st, 0, 5, 20, game.PlayerTaps{UserID: a.ID, Count: 1}); res.Status != game.Overlap || res.Offset != 10 {
		t.Fatalf("overlap: %+v", res)
	}
	// Another partition is independent.
	if res := apply(t, st, 1, 0, 4, game.PlayerTaps{UserID: a.ID, Count: 4}); res.Status != game.Applied {
		t.Fatalf("partition 1: %+v", res)
	}

	u, err := st.User(ctx, a.ID)
	if err != nil || u.TapCount != 11 {
		t.Fatalf("alice: %+v %v", u, err)
	}
	snap, err := st.Snapshot(ctx, 10, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := map[game.Team]int64{a.Team: 11, b.Team: 3}
	gs := snap.GameState
	if gs.BlueScore != want[game.Blue] || gs.RedScore != want[game.Red] || gs.TotalTaps != 14 {
		t.Fatalf("state %+v, want %v", gs, want)
	}
	if len(snap.Leaderboard) != 2 || snap.Leaderboard[0].Username != "alice" || snap.Leaderboard[0].Rank != 1 || snap.Leaderboard[0].TapCount != 11 {
		t.Fatalf("leaderboard %+v", snap.Leaderboard)
	}
	offs, err := st.Offsets(ctx, "game-taps", []int32{0, 1, 2})
	if err != nil || offs[0] != 10 || offs[1] != 4 || len(offs) != 2 {
		t.Fatalf("offsets %v %v", offs, err)
	}

	// The seed's redis-cli commands give the right answers against real Redis.
	cli := func(args ...string) string {
		out, err := exec.Command("redis-cli", append([]string{"-p", fmt.Sprint(r.Port)}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := cli("GET", "game:total:taps"); got != "14" {
		t.Errorf("GET game:total:taps = %q", got)
	}
	if got := cli("GET", "game:team:"+string(a.Team)+":score"); got != "11" {
		t.Errorf("team score = %q", got)
	}
	if got := cli("HLEN", "game:users"); got != "2" {
		t.Errorf("HLEN = %q", got)
	}
	var cu game.User
	if err := json.Unmarshal([]byte(cli("HGET", "game:users", a.ID)), &cu); err != nil || cu.TapCount != 11 || cu.Username != "alice" {
		t.Errorf("HGET user: %+v %v", cu, err)
	}
	if all := cli("HGETALL", "game:users"); !strings.Contains(all, `"username":"bob"`) || !strings.Contains(all, `"tapCount":3`) {
		t.Errorf("HGETALL: %s", all)
	}
}

func TestApplyPatchesForeignUserJSON(t *testing.T) {
	st, r := newStore(t)
	ctx := context.Background()
	// A user written by the old game: other field order, tapCount not last.
	old := `{"id":"u1","tapCount":5,"username":"old","team":"red","sessionId":"s"}`
	if err := r.Client().HSet(ctx, store.KeyUsers, "u1", old).Err(); err != nil {
		t.Fatal(err)
	}
	if res := apply(t, st, 0, 0, 1, game.PlayerTaps{UserID: "u1", Count: 2}); res.Applied != 2 {
		t.Fatalf("%+v", res)
	}
	u, err := st.User(ctx, "u1")
	if err != nil || u.TapCount != 2 || u.Team != game.Red || u.Username != "old" {
		t.Fatalf("%+v %v", u, err)
	}
}

func TestSubscribeSignalsChanges(t *testing.T) {
	st, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := st.Subscribe(ctx)
	select {
	case <-ch: // the initial catch-up signal
	case <-time.After(5 * time.Second):
		t.Fatal("no initial signal")
	}
	if err := st.Notify(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no signal after Notify")
	}
}

func TestSubscribeSurvivesRedisRestart(t *testing.T) {
	st, r := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := st.Subscribe(ctx)
	<-ch
	r.Kill()
	r.Start()
	testenv.Eventually(t, 10*time.Second, func() string {
		_ = st.Notify(ctx)
		select {
		case <-ch:
			return ""
		default:
			return "no signal after restart"
		}
	})
}

// Players a state from before names were unique holds (written straight to
// game:users, as an older version did) get their names held once; a
// second run changes nothing.
func TestHoldNamesOfAnOlderState(t *testing.T) {
	st, r := newStore(t)
	ctx := context.Background()
	for i, name := range []string{"alice", "Bob", "ABE"} {
		u := game.User{ID: fmt.Sprintf("old%d", i), Username: name, Team: game.Blue, TapCount: 3}
		raw, _ := json.Marshal(u)
		if err := r.Client().HSet(ctx, store.KeyUsers, u.ID, raw).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Join(ctx, "ALICE", time.Now()); err != nil {
		t.Fatalf("before the names are held, ALICE joins: %v", err)
	}
	if err := r.Client().Del(ctx, store.KeyNames).Err(); err != nil { // as the older version left it
		t.Fatal(err)
	}
	if n, err := st.HoldNames(ctx); err != nil || n != 4 {
		t.Fatalf("HoldNames: %d %v, want the 4 players read", n, err)
	}
	for _, name := range []string{"Alice", "bob", "ΑΒΕ"} {
		if _, err := st.Join(ctx, name, time.Now()); !errors.Is(err, game.ErrNameTaken) {
			t.Errorf("join %q after HoldNames: %v, want taken", name, err)
		}
	}
	if n, err := st.HoldNames(ctx); err != nil || n != 0 {
		t.Fatalf("second HoldNames: %d %v, want nothing to do", n, err)
	}
}
