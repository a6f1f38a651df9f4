package live

import (
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
)

// The pacing rules, each a table: no hub, no clock.

func TestNextGap(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct{ took, min, want time.Duration }{
		{0, 50 * ms, 50 * ms},          // a quick frame: the minimum interval
		{20 * ms, 50 * ms, 50 * ms},    // 30 ms is under the minimum
		{40 * ms, 50 * ms, 60 * ms},    // a slow frame: as long again as half of it
		{250 * ms, 50 * ms, 375 * ms},  // at the drain wait's cap
		{100 * ms, 200 * ms, 200 * ms}, // a longer minimum holds
	} {
		if got := nextGap(tc.took, tc.min); got != tc.want {
			t.Errorf("nextGap(%v, %v) = %v, want %v", tc.took, tc.min, got, tc.want)
		}
	}
	for _, tc := range []struct{ every, gap, want time.Duration }{
		{250 * ms, 50 * ms, 250 * ms},  // 20 frames/s: the interval
		{250 * ms, 100 * ms, 300 * ms}, // frames spaced out: every third
	} {
		if got := boardHold(tc.every, tc.gap); got != tc.want {
			t.Errorf("boardHold(%v, %v) = %v, want %v", tc.every, tc.gap, got, tc.want)
		}
	}
}

func TestShownBoardHoldsChangesBack(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	a := []game.LeaderboardEntry{{ID: "a", TapCount: 1, Rank: 1}}
	b := []game.LeaderboardEntry{{ID: "a", TapCount: 2, Rank: 1}}
	shown := shownBoard{a, t0}
	for _, tc := range []struct {
		name string
		lb   []game.LeaderboardEntry
		at   time.Duration // after t0
		want shownBoard
		due  time.Duration // after t0; -1: nothing held back
	}{
		{"no change", a, 10 * ms, shown, -1},
		{"a change too soon is held back", b, 100 * ms, shown, 250 * ms},
		{"just before the hold ends", b, 249 * ms, shown, 250 * ms},
		{"a change once the hold is over shows", b, 250 * ms, shownBoard{b, t0.Add(250 * ms)}, -1},
		{"no change, long after", a, time.Hour, shown, -1},
	} {
		got, due := shown.next(tc.lb, t0.Add(tc.at), 250*ms)
		wantDue := time.Time{}
		if tc.due >= 0 {
			wantDue = t0.Add(tc.due)
		}
		if got.since != tc.want.since || len(got.entries) != 1 || got.entries[0] != tc.want.entries[0] || !due.Equal(wantDue) {
			t.Errorf("%s: shows %+v due %v; want %+v due %v", tc.name, got, due, tc.want, wantDue)
		}
	}
}

func TestCadence(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	c := cadence{every: 200 * ms}
	if !c.due(t0) {
		t.Fatal("an action that never ran is not due")
	}
	c.ran(t0)
	for _, tc := range []struct {
		at   time.Duration
		due  bool
		wait time.Duration
	}{{0, false, 200 * ms}, {150 * ms, false, 50 * ms}, {200 * ms, true, 0}, {300 * ms, true, -100 * ms}} {
		if got := c.due(t0.Add(tc.at)); got != tc.due {
			t.Errorf("%v after it ran: due %v, want %v", tc.at, got, tc.due)
		}
		if got := c.wait(t0.Add(tc.at)); got != tc.wait {
			t.Errorf("%v after it ran: wait %v, want %v", tc.at, got, tc.wait)
		}
	}
}
