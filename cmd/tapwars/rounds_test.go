package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// kill -9 of the binary in the middle of a timed round: the restarted
// instance goes on with the round from the log, ends it at its planned
// time, and its final scores hold every tap answered 202 for it and, beyond
// those, only taps whose answer the kill cut off.
func TestKill9DuringTimedRound(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	testenv.EachKafka(t, testKill9DuringTimedRound)
}

func testKill9DuringTimedRound(t *testing.T, kafka string) {
	r, k := testenv.StartRedis(t), testenv.StartBroker(t, kafka, 4, stream.Topic)
	port := testenv.FreePort(t)
	const token = "round-admin-token-0123456789"
	env := append([]string{"REDIS_URL=" + r.URL(), "DATA_DIR=" + t.TempDir(),
		"ADMIN_TOKEN=" + token, "TAP_TIMEOUT=1s", "TAP_RATE_LIMIT=0"}, testenv.EnvList(k.Env())...)
	p := start(t, port, env...)
	var players []joined
	for i := range 6 {
		players = append(players, join(t, p.base, fmt.Sprintf("round%d", i)))
	}
	code, b, err := post(p.base, "/admin/rounds", token, `{"seconds": 15, "countdown": 1}`)
	var started struct {
		Round game.RoundState `json:"round"`
	}
	if err != nil || code != http.StatusCreated || json.Unmarshal(b, &started) != nil {
		t.Fatalf("POST /admin/rounds: %d %s %v", code, b, err)
	}
	rs := started.Round
	stop := make(chan struct{})
	answers := tapAnswers(p.base, players, stop)
	time.Sleep(time.Until(time.UnixMilli(rs.StartsAt).Add(2 * time.Second)))
	p.kill()
	killed := time.Now()
	p = start(t, port, env...)
	t.Logf("restarted in %v", time.Since(killed).Round(time.Millisecond))
	if again := gameState(t, p.base).Round; again.Number != rs.Number || again.EndsAt != rs.EndsAt ||
		(time.Now().UnixMilli() < rs.EndsAt-100 && again.Status != game.StatusRunning) {
		t.Fatalf("after kill -9 the round is %+v, want round %d running until %d", again, rs.Number, rs.EndsAt)
	}
	time.Sleep(time.Until(time.UnixMilli(rs.EndsAt).Add(700 * time.Millisecond)))
	close(stop)
	all := answers()

	var final game.RoundState
	testenv.Eventually(t, 20*time.Second, func() string {
		final = gameState(t, p.base).Round
		if !final.Final {
			return fmt.Sprintf("round %+v not final", final)
		}
		return ""
	})
	team := map[game.Team]int64{}
	unanswered := map[game.Team]int64{} // cut off by the kill: may or may not count
	codes := map[int]int{}
	for _, a := range all {
		codes[a.code]++
		if a.code == 0 {
			unanswered[a.ev.Team]++
			continue
		}
		if a.code != http.StatusAccepted {
			continue
		}
		if a.ev.Round != rs.Number || a.ev.Timestamp < rs.StartsAt || a.ev.Timestamp >= rs.EndsAt {
			t.Errorf("tap %+v accepted outside round %d [%d, %d)", a.ev, rs.Number, rs.StartsAt, rs.EndsAt)
		}
		team[a.ev.Team]++
	}
	t.Logf("answers %v (0: no answer, the kill cut it off); result %+v", codes, final)
	// Every tap answered 202 counts; beyond those only taps whose answer the
	// kill cut off (Kafka took them, the client never heard): none answered
	// 409, none after the bell.
	for _, tm := range []game.Team{game.Blue, game.Red} {
		got := map[game.Team]int64{game.Blue: final.Blue, game.Red: final.Red}[tm]
		if got < team[tm] || got > team[tm]+unanswered[tm] {
			t.Fatalf("final %s %d, but %d taps answered 202 and %d unanswered", tm, got, team[tm], unanswered[tm])
		}
	}
	if codes[http.StatusConflict] == 0 || team[game.Blue]+team[game.Red] == 0 {
		t.Fatalf("answers %v: want taps counted and taps refused after the bell", codes)
	}
	p.term()
}
