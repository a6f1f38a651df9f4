package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// startRound starts a timed round through base's admin API.
func startRound(t *testing.T, base, body string) game.RoundState {
	t.Helper()
	code, _, b := admReq(t, nil, "POST", base+"/admin/rounds", body, overlay(bearer, map[string]string{"Content-Type": "application/json"}))
	if code != http.StatusCreated {
		t.Fatalf("POST /admin/rounds: %d %s", code, b)
	}
	var res struct {
		Round game.RoundState `json:"round"`
	}
	if err := json.Unmarshal([]byte(b), &res); err != nil {
		t.Fatal(err)
	}
	return res.Round
}

// finalRound waits until base's game state shows round n's final result.
func finalRound(t *testing.T, base string, n int64, within time.Duration) game.RoundState {
	t.Helper()
	var rs game.RoundState
	testenv.Eventually(t, within, func() string {
		rs = state(t, base).Round
		if rs.Number != n || !rs.Final {
			return fmt.Sprintf("round %+v, want round %d final", rs, n)
		}
		return ""
	})
	return rs
}

// checkRoundExact fails unless round rs's final scores are exactly the
// taps per team answered 202 for it, each stamped inside its play, and no
// tap of an earlier round was accepted after its start.
func checkRoundExact(t *testing.T, rs game.RoundState, announced time.Time, answers []tapAnswer) {
	t.Helper()
	team := map[game.Team]int64{}
	codes := map[int]int{}
	for _, a := range answers {
		codes[a.code]++
		if a.code != http.StatusAccepted {
			continue
		}
		switch {
		case a.ev.Round == rs.Number:
			if a.ev.Timestamp < rs.StartsAt || a.ev.Timestamp >= rs.EndsAt {
				t.Errorf("tap %s accepted for round %d stamped %d, outside [%d, %d)", a.ev.ID, rs.Number, a.ev.Timestamp, rs.StartsAt, rs.EndsAt)
			}
			team[a.ev.Team] += int64(a.ev.Taps())
		case a.ev.Round > rs.Number:
			t.Errorf("tap of round %d during round %d's test", a.ev.Round, rs.Number)
		case a.ev.Timestamp >= announced.UnixMilli():
			t.Errorf("tap %s accepted in open play round %d at %d, after round %d was announced at %d", a.ev.ID, a.ev.Round, a.ev.Timestamp, rs.Number, announced.UnixMilli())
		}
	}
	t.Logf("answers %v; 202 in the round: blue %d, red %d; result %+v", codes, team[game.Blue], team[game.Red], rs)
	if rs.Blue != team[game.Blue] || rs.Red != team[game.Red] {
		t.Fatalf("final scores blue %d red %d, but 202 taps of the round: blue %d red %d", rs.Blue, rs.Red, team[game.Blue], team[game.Red])
	}
	if rs.Winner == nil || *rs.Winner != game.Winner(rs.Blue, rs.Red) {
		t.Fatalf("winner %v for blue %d red %d", rs.Winner, rs.Blue, rs.Red)
	}
	if codes[http.StatusConflict] == 0 {
		t.Fatal("no tap was refused with 409 during the countdown or after the bell")
	}
	if team[game.Blue]+team[game.Red] == 0 {
		t.Fatal("no tap counted in the round")
	}
}

// Two instances share one timed round: many workers tap on both across
// the countdown, the start and the bell; the final per-team scores are
// exactly the taps answered 202 for the round, every tap during the
// countdown and after the bell got 409, and the result is the same on both
// instances and stays after a restart of both.
func TestTimedRoundExactAtTheBell(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	testenv.EachKafka(t, testTimedRoundExactAtTheBell)
}

func testTimedRoundExactAtTheBell(t *testing.T, kafka string) {
	r, k := testenv.StartRedis(t), testenv.StartBroker(t, kafka, 4, stream.Topic)
	env := map[string]string{"ADMIN_TOKEN": admToken, "TAP_RATE_LIMIT": "0", "JOIN_RATE_LIMIT": "0", "TAP_TIMEOUT": "1s"}
	n1, n2 := startApp(t, r, k, env, nil), startApp(t, r, k, env, nil)
	bases := []string{n1.URL(), n2.URL()}
	players := make([]joined, 20)
	for i := range players {
		players[i] = join(t, bases[i%2], fmt.Sprintf("bell%d", i))
	}
	// Open play first: taps count as they do today.
	tapN(t, bases[0], players[0], 3)

	stop := tapLoad(bases, players, 12)
	time.Sleep(300 * time.Millisecond)
	rs := startRound(t, bases[0], `{"seconds": 3, "countdown": 1}`)
	announced := time.Now()
	if rs.Mode != game.ModeTimed || rs.Status != game.StatusCountdown || rs.EndsAt-rs.StartsAt != 3000 {
		t.Fatalf("round %+v", rs)
	}
	// Every instance shows the countdown.
	for _, b := range bases {
		if st := state(t, b).Round; st.Number != rs.Number || st.Status == "" {
			t.Fatalf("%s: round %+v", b, st)
		}
	}
	time.Sleep(time.Until(time.UnixMilli(rs.EndsAt).Add(700 * time.Millisecond)))
	answers := stop()

	final := finalRound(t, bases[1], rs.Number, 20*time.Second)
	checkRoundExact(t, final, announced, answers)
	if other := finalRound(t, bases[0], rs.Number, 5*time.Second); other.Blue != final.Blue || other.Red != final.Red {
		t.Fatalf("instances disagree: %+v vs %+v", other, final)
	}
	// After the bell a tap is refused with a message a person understands.
	code, _, body := call(t, "POST", bases[0]+"/api/tap", players[1].Token, "", nil)
	if code != http.StatusConflict || !json.Valid([]byte(body)) {
		t.Fatalf("tap after the bell: %d %s", code, body)
	}
	t.Logf("after the bell: %s", body)

	// Both instances restart: the result is the same.
	_ = n1.Close()
	_ = n2.Close()
	n3 := startApp(t, r, k, env, nil)
	if again := finalRound(t, n3.URL(), rs.Number, 20*time.Second); again.Blue != final.Blue || again.Red != final.Red || *again.Winner != *final.Winner {
		t.Fatalf("after a restart: %+v, was %+v", again, final)
	}
	// Redis loses everything: the rebuild from the log gives the same
	// final result and history. (The consumer notices once it owns the
	// partitions.)
	testenv.Eventually(t, 30*time.Second, func() string {
		if own, ok := owned(4, n3); !ok {
			return fmt.Sprintf("the new instance owns %v", own)
		}
		return ""
	})
	r.Client().FlushAll(context.Background())
	if again := finalRound(t, n3.URL(), rs.Number, 30*time.Second); again.Blue != final.Blue || again.Red != final.Red || *again.Winner != *final.Winner {
		t.Fatalf("after a rebuild: %+v, was %+v", again, final)
	}
	testenv.Eventually(t, 30*time.Second, func() string {
		gs := state(t, n3.URL()).GameState
		if gs.BlueScore > final.Blue || gs.RedScore > final.Red {
			t.Fatalf("the rebuilt scores are blue %d red %d, above the result blue %d red %d", gs.BlueScore, gs.RedScore, final.Blue, final.Red)
		}
		if gs.BlueScore != final.Blue || gs.RedScore != final.Red {
			return fmt.Sprintf("rebuilt scores blue %d red %d, result blue %d red %d", gs.BlueScore, gs.RedScore, final.Blue, final.Red)
		}
		return ""
	})
	if code, page, body := rounds(t, n3.URL(), ""); code != 200 || page.Total != 1 || page.Rounds[0].Blue != final.Blue || page.Rounds[0].Red != final.Red {
		t.Fatalf("history after a rebuild: %d %s", code, body)
	}
}

// rounds is GET /api/rounds with query q.
func rounds(t *testing.T, base, q string) (int, struct {
	Rounds []game.RoundResult `json:"rounds"`
	Total  int64              `json:"total"`
}, string) {
	t.Helper()
	var out struct {
		Rounds []game.RoundResult `json:"rounds"`
		Total  int64              `json:"total"`
	}
	code, _, body := call(t, "GET", base+"/api/rounds"+q, "", "", &out)
	return code, out, body
}

// Repeating rounds follow each other on their own, their results make the
// history (/api/rounds, /rounds, the export), and DELETE /admin/rounds goes
// back to open play. Bad settings are refused with what is wrong.
func TestTimedRoundsRepeatHistoryAndStop(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	n := startApp(t, r, k, map[string]string{"ADMIN_TOKEN": admToken, "TAP_TIMEOUT": "1s"}, nil)
	base := n.URL()
	jsonHdr := overlay(bearer, map[string]string{"Content-Type": "application/json"})
	for body, want := range map[string]string{
		`{}`:                              "seconds is required",
		`{"seconds": 0}`:                  "seconds must be 1 to 3600",
		`{"seconds": 5, "countdown": 99}`: "countdown must be 0 to 60",
		`{"seconds": "five"}`:             "seconds\\\" must be a whole number",
	} {
		if code, _, b := admReq(t, nil, "POST", base+"/admin/rounds", body, jsonHdr); code != http.StatusBadRequest || !strings.Contains(b, want) {
			t.Errorf("POST /admin/rounds %s: %d %s, want 400 %q", body, code, b, want)
		}
	}
	if code, _, b := admReq(t, nil, "POST", base+"/admin/rounds", `{"seconds": 5}`, map[string]string{"Content-Type": "application/json"}); code != http.StatusUnauthorized {
		t.Errorf("without the admin token: %d %s", code, b)
	}

	a, b := join(t, base, "rep-a"), join(t, base, "rep-b")
	rs := startRound(t, base, `{"seconds": 2, "countdown": 1, "repeat": true, "intermission": 4}`)
	if rs.NextStartsAt != rs.EndsAt+4000 {
		t.Fatalf("round %+v: next start should be 4 s after the bell", rs)
	}
	if code, _, body := call(t, "POST", base+"/api/tap", a.Token, "", nil); code != http.StatusConflict || !strings.Contains(body, "has not started yet") {
		t.Fatalf("tap in the countdown: %d %s", code, body)
	}
	// The same rule over the WebSocket (one tap rule for both).
	ws := dialTaps(t, base, "?format=json", bearerHeader(b.Token))
	ws.send(`{"count":1,"seq":1}`)
	if f := ws.nextJSON(); f.Type != "error" || f.Status != http.StatusConflict || !strings.Contains(f.Error, "has not started yet") {
		t.Fatalf("socket tap in the countdown: %+v", f)
	}
	time.Sleep(time.Until(time.UnixMilli(rs.StartsAt).Add(100 * time.Millisecond)))
	tapN(t, base, a, 5)
	tapN(t, base, b, 2)
	if st := state(t, base).Round; st.Status != game.StatusRunning {
		t.Fatalf("round %+v, want running", st)
	}
	time.Sleep(time.Until(time.UnixMilli(rs.EndsAt)))
	if code, _, body := call(t, "POST", base+"/api/tap", a.Token, "", nil); code != http.StatusConflict || !strings.Contains(body, "the next one starts in") {
		t.Fatalf("tap after the bell: %d %s", code, body)
	}
	final := finalRound(t, base, rs.Number, 15*time.Second)
	wantA := map[game.Team]int64{}
	wantA[a.User.Team] += 5
	wantA[b.User.Team] += 2
	if final.Blue != wantA[game.Blue] || final.Red != wantA[game.Red] || final.TopTapper == nil || final.TopTapper.ID != a.User.ID || final.TopTapper.TapCount != 5 {
		t.Fatalf("final %+v (top %+v), want %v with %s on top", final, final.TopTapper, wantA, a.User.Username)
	}
	// The next round follows by itself, on the schedule.
	testenv.Eventually(t, 15*time.Second, func() string {
		if st := state(t, base).Round; st.Number != rs.Number+1 || st.StartsAt != rs.EndsAt+4000 || st.EndsAt != st.StartsAt+2000 {
			return fmt.Sprintf("round %+v, want round %d starting at %d", st, rs.Number+1, rs.EndsAt+4000)
		}
		return ""
	})
	code, page, body := rounds(t, base, "")
	if code != 200 || page.Total != 1 || len(page.Rounds) != 1 || page.Rounds[0].Blue != final.Blue || page.Rounds[0].Winner != *final.Winner {
		t.Fatalf("/api/rounds: %d %s", code, body)
	}
	finalRound(t, base, rs.Number+1, 20*time.Second) // nobody tapped: a tie, 0 to 0
	code, page, body = rounds(t, base, "?limit=1&page=2")
	if code != 200 || page.Total < 2 || len(page.Rounds) != 1 || page.Rounds[0].Round != rs.Number {
		t.Fatalf("/api/rounds page 2: %d %s", code, body)
	}
	if code, _, body := call(t, "GET", base+"/api/rounds?limit=0", "", "", nil); code != 400 || !strings.Contains(body, "limit must be") {
		t.Fatalf("/api/rounds?limit=0: %d %s", code, body)
	}
	if code, _, html := admReq(t, nil, "GET", base+"/rounds", "", nil); code != 200 || !strings.Contains(html, a.User.Username+" (5)") {
		t.Fatalf("/rounds: %d %.500s", code, html)
	}
	_, _, ex := admReq(t, nil, "GET", base+"/admin/export", "", bearer)
	if !strings.Contains(ex, `"rounds": [`) || !strings.Contains(ex, `"topTapper"`) {
		t.Fatalf("export without the history: %.300s", ex)
	}

	// Back to open play: taps count again.
	if code, _, body := admReq(t, nil, "DELETE", base+"/admin/rounds", "", bearer); code != 200 || !strings.Contains(body, `"mode":"open"`) {
		t.Fatalf("DELETE /admin/rounds: %d %s", code, body)
	}
	tapN(t, base, a, 3)
	testenv.Eventually(t, 10*time.Second, func() string {
		if s := state(t, base); s.Round.Mode != game.ModeOpen || s.GameState.TotalTaps != 3 {
			return fmt.Sprintf("state %+v round %+v", s.GameState, s.Round)
		}
		return ""
	})
}

// The admin page's forms start timed rounds and go back to open play, with
// the session cookie and the CSRF token like every admin form; without the
// token they are refused.
func TestTimedRoundsFromTheAdminPage(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	base := startApp(t, r, k, map[string]string{"ADMIN_TOKEN": admToken}, nil).URL()
	formHdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
	browser, page := adminSignIn(t, base)
	if !strings.Contains(page, `action="/admin/rounds"`) || !strings.Contains(page, `action="/admin/rounds/stop"`) {
		t.Fatalf("no timed-round forms on the admin page: %.300s", page)
	}
	csrf := csrfToken(t, page)
	start := url.Values{"seconds": {"30"}, "countdown": {"5"}, "intermission": {"10"}, "repeat": {"yes"}}
	if code, _, _ := admReq(t, browser, "POST", base+"/admin/rounds", start.Encode(), formHdr); code != http.StatusForbidden {
		t.Fatalf("without the CSRF token: %d", code)
	}
	start.Set("_csrf", csrf)
	if code, hdr, body := admReq(t, browser, "POST", base+"/admin/rounds", start.Encode(), formHdr); code != http.StatusSeeOther || hdr.Get("Location") != "/admin?done=rounds" {
		t.Fatalf("start from the form: %d %v %.200s", code, hdr, body)
	}
	rs := state(t, base).Round
	if rs.Mode != game.ModeTimed || rs.Status != game.StatusCountdown || rs.EndsAt-rs.StartsAt != 30000 || rs.NextStartsAt != rs.EndsAt+10000 {
		t.Fatalf("round %+v", rs)
	}
	bad := url.Values{"seconds": {"lots"}, "_csrf": {csrf}}
	if code, _, body := admReq(t, browser, "POST", base+"/admin/rounds", bad.Encode(), formHdr); code != http.StatusBadRequest || !strings.Contains(body, "seconds must be a whole number") {
		t.Fatalf("bad form: %d %.300s", code, body)
	}
	if code, hdr, _ := admReq(t, browser, "POST", base+"/admin/rounds/stop", url.Values{"_csrf": {csrf}}.Encode(), formHdr); code != http.StatusSeeOther || hdr.Get("Location") != "/admin?done=open" {
		t.Fatalf("stop from the form: %d %v", code, hdr)
	}
	if rs := state(t, base).Round; rs.Mode != game.ModeOpen || rs.Number != 2 {
		t.Fatalf("after stop: %+v", rs)
	}
}
