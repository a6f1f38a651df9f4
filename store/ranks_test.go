package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
)

// Ties share a rank, on the leaderboard and in a player's own stats:
// 9, 5, 5, 2 taps rank 1, 2, 2, 4; Of counts the ranked players.
func TestTiesShareARank(t *testing.T) {
	st, _ := newStore(t)
	ctx := context.Background()
	var ids []string
	var taps []game.PlayerTaps
	for i, n := range []int64{9, 5, 5, 2} {
		u, err := st.Join(ctx, fmt.Sprintf("p%d", i), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
		taps = append(taps, game.PlayerTaps{UserID: u.ID, Count: n})
	}
	apply(t, st, 0, 0, 4, taps...)
	snap, err := st.Snapshot(ctx, 10, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range snap.Leaderboard {
		got = append(got, fmt.Sprintf("%d:%d", e.Rank, e.TapCount))
	}
	if fmt.Sprint(got) != "[1:9 2:5 2:5 4:2]" {
		t.Fatalf("leaderboard ranks %v", got)
	}
	stats, err := st.Stats(ctx, append(ids, "nobody"))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{1, 2, 2, 4} {
		if s := stats[ids[i]]; s.Rank != want || s.Of != 4 {
			t.Errorf("player %d: %+v, want rank %d of 4", i, s, want)
		}
	}
	if s := stats["nobody"]; s.Rank != 0 || s.Taps != 0 {
		t.Errorf("unknown player: %+v", s)
	}
}
