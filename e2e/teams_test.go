package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tapwars/tapwars/internal/testenv"
)

// The host's team names on a 375 px phone, wherever a team is named: the
// scoreboard, the tap button, the countdown and the winner banner, the
// personal result at the bell ("Dogs of Thunder won — you were #1 of 1…"),
// /leaderboard and /rounds; never the seed's "Blue" or "Red". Screenshots
// teams-{320,375,430} and teams-{countdown,result,leaderboard,rounds}-375.
func TestTeamNamesOnPhones(t *testing.T) {
	e := newPhoneEnv(t, nil)
	e.setTeams(`{"blue":{"name":"Clever Cats","color":"#6d28d9"},"red":{"name":"Dogs of Thunder","color":"#0f766e"}}`)
	names := map[string]string{"blue": "Clever Cats", "red": "Dogs of Thunder"}
	browser := newBrowser(t)
	p := newPlayer(t, browser, "Ann")
	p.join(e.base, "/")
	p.asPhone(375, 800)
	p.waitConnected(10*time.Second, "live")
	var mine string
	for _, u := range e.state().Users {
		if u.ID == p.id {
			mine = string(u.Team)
		}
	}
	if names[mine] == "" {
		t.Fatalf("Ann's team %q", mine)
	}

	// The seed's names must not show where the host named the teams.
	seed := regexp.MustCompile(`(?i)\b(blue|red)\b`)
	noSeed := func(where, text string) {
		t.Helper()
		if w := seed.FindString(text); w != "" {
			t.Errorf("%s says %q: the seed's team name %q, not the host's", where, text, w)
		}
	}
	named := func(where, text string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(strings.ToLower(text), strings.ToLower(w)) {
				t.Errorf("%s says %q, want %q in it", where, text, w)
			}
		}
		noSeed(where, text)
	}
	const teamsJS = `[...document.querySelectorAll('.score__team, .tap__team')].map(e => e.textContent.trim()).join(' | ') +
		' | ' + document.getElementById('tap-button').getAttribute('aria-label')`
	named("the game page", eval[string](p, teamsJS), names["blue"], names["red"], "for "+names[mine], "Tap for team "+names[mine])
	// A long name may take two lines on a phone; the two scores stay side
	// by side on one line all the same.
	const scoresJS = `(() => { const b = document.getElementById('blue-score').getBoundingClientRect(), r = document.getElementById('red-score').getBoundingClientRect();
		return Math.round(Math.abs(b.top - r.top) + Math.abs(b.bottom - r.bottom)); })()`
	for _, w := range phoneWidths {
		p.asPhone(w, 800)
		if d := eval[int](p, scoresJS); d > 1 {
			t.Errorf("%d px: the two scores are %d px apart in height, want side by side", w, d)
		}
		if bad := eval[[]string](p, numberLayoutJS); len(bad) > 0 {
			t.Errorf("%d px: %s", w, strings.Join(bad, "; "))
		}
		p.shot(fmt.Sprintf("teams-%d", w))
	}
	p.asPhone(375, 800)

	sc := e.startRound(2*time.Second, 3*time.Second)
	p.waitRound(1500*time.Millisecond, "countdown", func(v roundView) bool { return v.Disabled && strings.Contains(v.Why, "starts in") })
	noSeed("the countdown", eval[string](p, `document.getElementById('round').textContent`))
	p.shot("teams-countdown-375")
	p.waitRound(3*time.Second, "play", func(v roundView) bool { return !v.Disabled })
	p.tapFast(3)

	p.waitRound(time.Until(time.UnixMilli(sc.EndsAt))+10*time.Second, "the winner banner", func(v roundView) bool { return v.Headline != "" })
	v := p.round()
	named("the banner's headline", v.Headline, names[mine]+" wins!")
	named("the banner's scores", eval[string](p, `[...document.querySelectorAll('#round .round__team')].map(e => e.textContent).join(' | ')`), names["blue"], names["red"])
	var res string
	testenv.Eventually(t, 3*time.Second, func() string {
		res = eval[string](p, `(() => { const r = document.getElementById('my-result'); return r && !r.hidden ? r.textContent : ''; })()`)
		if want := names[mine] + " won — you were #1 of 1 with 3 taps"; res != want {
			return fmt.Sprintf("the personal result says %q, want %q", res, want)
		}
		return ""
	})
	if bad := eval[[]string](p, numberLayoutJS); len(bad) > 0 {
		t.Errorf("the result at 375 px: %s", strings.Join(bad, "; "))
	}
	p.shot("teams-result-375")

	p.do(chromedp.Navigate(e.base+"/leaderboard"), chromedp.WaitVisible(chromedp.CSS("#leaderboard-full")))
	named("/leaderboard", eval[string](p, `document.querySelector('main').innerText`), names[mine])
	p.shot("teams-leaderboard-375")
	p.do(chromedp.Navigate(e.base+"/rounds"), chromedp.WaitVisible(chromedp.CSS("table")))
	named("/rounds", eval[string](p, `document.querySelector('main').innerText`), names["blue"], names["red"])
	if w := eval[string](p, `document.querySelector('tbody tr .rounds__winner').textContent.trim()`); w != names[mine] {
		t.Errorf("/rounds names the winner %q, want %q", w, names[mine])
	}
	p.shot("teams-rounds-375")
}
