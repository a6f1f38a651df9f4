package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/stream"
)

// An import of the largest legal round (game.MaxCount) and counts: the
// game goes on from it (taps count, reset zeroes, a timed round starts and
// ends with its result). One more is refused with 400 and the limit named; a store left at
// 2^53 by an older version refuses a new round with 409 and says why.
func TestLargestLegalRoundPlaysOn(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	m := admInstance(t, r, k, map[string]string{"TAP_RATE_LIMIT": "0"}, nil)
	base := m.URL()
	ann, bob := join(t, base, "ann"), join(t, base, "bob")
	tapN(t, base, ann, 2)
	waitTotals(t, base, map[*joined]int64{&ann: 2})
	_, _, raw := admReq(t, nil, "GET", base+"/admin/export", "", bearer)
	var ex store.Export
	if err := json.Unmarshal([]byte(raw), &ex); err != nil {
		t.Fatal(err)
	}
	const most = int64(game.MaxCount)
	ex.Round = most
	for i := range ex.Players {
		if ex.Players[i].ID == ann.User.ID {
			ex.Players[i].TapCount = most - 1000
		}
	}
	ex.BlueScore, ex.RedScore = 0, 0
	for _, p := range ex.Players {
		if p.Team == game.Blue {
			ex.BlueScore += p.TapCount
		} else {
			ex.RedScore += p.TapCount
		}
	}
	ex.TotalTaps = ex.BlueScore + ex.RedScore
	over := ex
	over.Round = most + 1
	if code, body := admin(t, "POST", base+"/admin/import", string(mustJSON(t, over)), nil); code != 400 || !strings.Contains(body, fmt.Sprintf("round is %d: it must be a whole number from 0 to %d", most+1, most)) {
		t.Fatalf("import of round %d: %d %s", most+1, code, body)
	}
	if code, body := admin(t, "POST", base+"/admin/import", string(mustJSON(t, ex)), nil); code != 200 && code != 202 {
		t.Fatalf("import of round %d: %d %s", most, code, body)
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		if gs := state(t, base).GameState; gs.Round != most || gs.TotalTaps != ex.TotalTaps {
			return fmt.Sprintf("state %+v after the import", gs)
		}
		return ""
	})
	tapN(t, base, ann, 50)
	waitTotals(t, base, map[*joined]int64{&ann: most - 950, &bob: 0})

	// Reset: the next round, zeroed.
	var reset struct{ Round int64 }
	if code, body := admin(t, "POST", base+"/admin/reset", "", &reset); code != 200 || reset.Round != most+1 {
		t.Fatalf("reset after the largest round: %d %s", code, body)
	}
	waitTotals(t, base, map[*joined]int64{&ann: 0, &bob: 0})
	// A timed round after it starts, counts and ends with its result.
	rs := startRound(t, base, `{"seconds": 2, "countdown": 0}`)
	if rs.Number != most+2 {
		t.Fatalf("timed round %d, want %d", rs.Number, most+2)
	}
	tapN(t, base, bob, 7)
	final := finalRound(t, base, most+2, 20*time.Second)
	if final.Red+final.Blue != 7 || final.Winner == nil {
		t.Fatalf("the timed round's result: %+v", final)
	}

	// A store an older version left at 2^53 (an import it let through):
	// no new round can be told from it, and the operator is told so.
	if err := r.Client().Set(context.Background(), store.KeyRound, int64(game.MaxExact), 0).Err(); err != nil {
		t.Fatal(err)
	}
	if code, body := admin(t, "POST", base+"/admin/reset", "", nil); code != 409 || !strings.Contains(body, "the last one the game can number exactly") {
		t.Fatalf("reset at 2^53: %d %s", code, body)
	}
	code, _, body := admReq(t, nil, "POST", base+"/admin/rounds", `{"seconds": 2}`, overlay(bearer, map[string]string{"Content-Type": "application/json"}))
	if code != 409 || !strings.Contains(body, "the last one the game can number exactly") {
		t.Fatalf("timed round at 2^53: %d %s", code, body)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
