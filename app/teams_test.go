package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// The host names the teams and picks their colours: the names are in the
// game state (JSON) and on the pages, the colours in /theme.css, the team
// ids stay blue and red. A colour white text is unreadable on is refused
// with a darker one that passes. The change is a fact in the log: Redis
// wiped and rebuilt from the log, the names are still there.
func TestTeamNamesAndColoursSurviveARebuild(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 3, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	base := m.URL()
	a := join(t, base, "ann")
	tapN(t, base, a, 3)

	// Sunflower yellow under white text: 1.6:1. Refused, with a shade that passes.
	code, body := admin(t, "POST", base+"/admin/teams", `{"blue":{"name":"Cats","color":"#ffd23f"},"red":{"name":"Dogs","color":"#0f766e"}}`, nil)
	if code != 400 || !strings.Contains(body, "contrast of 1.") || !strings.Contains(body, "darker shade such as #") {
		t.Fatalf("a pale colour: %d %s", code, body)
	}
	if code, body := admin(t, "POST", base+"/admin/teams", `{"blue":{"name":"Cats","color":"#111111"},"red":{"name":"cats","color":"#0f766e"}}`, nil); code != 400 || !strings.Contains(body, "different names") {
		t.Fatalf("two teams of one name: %d %s", code, body)
	}
	want := game.Teams{Blue: game.TeamStyle{Name: "Cats", Color: "#7c2d12"}, Red: game.TeamStyle{Name: "Dogs", Color: "#0f766e"}}
	var got game.Teams
	if code, body := admin(t, "POST", base+"/admin/teams", `{"blue":{"name":" Cats ","color":"#7C2D12"},"red":{"name":"Dogs","color":"#0f766e"}}`, &got); code != 200 || got != want {
		t.Fatalf("set teams: %d %s", code, body)
	}
	check := func(when string) {
		t.Helper()
		testenv.Eventually(t, 20*time.Second, func() string {
			s := state(t, base)
			if s.Teams != want || s.GameState.TotalTaps != 3 {
				return fmt.Sprintf("%s: teams %+v, total %d", when, s.Teams, s.GameState.TotalTaps)
			}
			return ""
		})
		_, _, page := admReq(t, nil, "GET", base+"/leaderboard", "", nil)
		if !strings.Contains(page, "Cats") || !strings.Contains(page, "Dogs") || !strings.Contains(page, `href="/theme.css?v=`) {
			t.Errorf("%s: the leaderboard page does not name the teams or link their colours", when)
		}
		_, hdr, css := admReq(t, nil, "GET", base+"/theme.css", "", nil)
		if !strings.Contains(css, "--blue: #7c2d12") || !strings.Contains(css, "--red: #0f766e") || !strings.HasPrefix(hdr.Get("Content-Type"), "text/css") {
			t.Errorf("%s: /theme.css %q", when, css)
		}
	}
	check("set")
	if u := state(t, base).Users; len(u) == 0 || u[0].Team != a.User.Team || !u[0].Team.Valid() {
		t.Fatalf("team ids changed: %+v", u)
	}

	r.Client().FlushAll(context.Background())
	check("after FLUSHALL and the rebuild from the log")
}
