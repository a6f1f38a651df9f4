package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/views"
)

const e2eAdminToken = "e2e-admin-token-0123456789abcdef"

// importState restores an export made of players through POST
// /admin/import, as a host would, and waits until the game state shows it.
func (e *env) importState(players []game.User) {
	e.t.Helper()
	ex := store.Export{Format: store.ExportFormat, Version: store.ExportVersion, Round: 1, Players: players}
	for _, u := range players {
		if u.Team == game.Blue {
			ex.BlueScore += u.TapCount
		} else {
			ex.RedScore += u.TapCount
		}
	}
	ex.TotalTaps = ex.BlueScore + ex.RedScore
	raw, err := json.Marshal(ex)
	if err != nil {
		e.t.Fatal(err)
	}
	e.admin("POST", "/admin/import", raw)
	deadline := time.Now().Add(10 * time.Second)
	for e.state().GameState.TotalTaps != ex.TotalTaps {
		if time.Now().After(deadline) {
			e.t.Fatalf("the import did not show: %+v", e.state().GameState)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// setTeams names the teams and sets their colours (POST /admin/teams).
func (e *env) setTeams(body string) {
	e.t.Helper()
	e.admin("POST", "/admin/teams", []byte(body))
}

// bigPlayers are a room whose scores reached 7 digits per team.
func bigPlayers() []game.User {
	now := time.Now().UnixMilli()
	u := func(id, name string, team game.Team, taps int64) game.User {
		return game.User{ID: id, Username: name, Team: team, JoinedAt: now, SessionID: "s" + id, TapCount: taps}
	}
	return []game.User{
		u("p1", "Maximiliana Thunderclap", game.Blue, 4_999_999),
		u("p2", "Zoë", game.Blue, 4_000_000),
		u("p3", "Kim", game.Red, 9_876_543),
		u("p4", "speedy_gonzales.42", game.Red, 123_456),
		u("p5", "Ørjan", game.Blue, 999_999),
		u("p6", "Lee", game.Blue, 1),
	}
}

// fitReport is what fitJS found wrong on the page: each entry names the
// element and the problem.
const fitJS = `(() => {
	const sel = %s;
	const prose = %s; // sentences: they may wrap, inside their box
	const bad = [];
	const boxes = [];
	const vw = innerWidth, vh = innerHeight;
	for (const s of sel) {
		for (const el of document.querySelectorAll(s)) {
			if (!el.offsetParent && getComputedStyle(el).position !== 'fixed') continue; // not shown
			const text = el.textContent.trim();
			if (!text) continue;
			// the text a person sees: not the words only screen readers get
			const rects = [];
			const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
			for (let n = walk.nextNode(); n; n = walk.nextNode()) {
				if (!n.nodeValue.trim() || n.parentElement.closest('.visually-hidden')) continue;
				const r = document.createRange();
				r.selectNodeContents(n);
				rects.push(...[...r.getClientRects()].filter(q => q.width > 0 && q.height > 0));
			}
			if (!rects.length) continue;
			const tops = new Set(rects.map(q => Math.round(q.top / 4)));
			// A name that ends in an ellipsis shows inside its own box.
			const ellipsis = getComputedStyle(el).textOverflow === 'ellipsis';
			const box = ellipsis ? el.getBoundingClientRect() : rects.reduce((u, q) => ({left: Math.min(u.left, q.left), top: Math.min(u.top, q.top), right: Math.max(u.right, q.right), bottom: Math.max(u.bottom, q.bottom), height: Math.max(u.bottom, q.bottom) - Math.min(u.top, q.top)}));
			const cs0 = getComputedStyle(el);
			const lh = parseFloat(cs0.lineHeight) || parseFloat(cs0.fontSize) * 1.2;
			const name = s + ' "' + text.slice(0, 40) + '"';
			if (!prose.some(p => el.matches(p)) && (tops.size > 1 || box.height > lh * 1.9)) bad.push(name + ': wraps (' + tops.size + ' lines, ' + Math.round(box.height) + ' px high at ' + Math.round(lh) + ' px)');
			if (box.left < -1 || box.top < -1 || box.right > vw + 1 || box.bottom > vh + 1) bad.push(name + ': outside the viewport ' + JSON.stringify([box.left, box.top, box.right, box.bottom].map(Math.round)));
			// clipped by an ancestor that hides overflow
			for (let a = ellipsis ? el.parentElement : el; a && a !== document.body; a = a.parentElement) {
				const cs = getComputedStyle(a);
				if (cs.overflowX === 'visible' && cs.overflowY === 'visible') continue;
				const ar = a.getBoundingClientRect();
				if (box.left < ar.left - 1 || box.right > ar.right + 1 || box.top < ar.top - 1 || box.bottom > ar.bottom + 1) {
					bad.push(name + ': clipped by ' + a.tagName + '.' + a.className);
				}
				break;
			}
			// inside its card's padding: text over a card's edge looks cut
			const card = el.parentElement && el.parentElement.closest('.scoreboard, .screen__board, .podium, .lobby, .round');
			if (card) {
				const cr = card.getBoundingClientRect(), cs = getComputedStyle(card);
				const inner = {left: cr.left + parseFloat(cs.borderLeftWidth) + parseFloat(cs.paddingLeft), top: cr.top + parseFloat(cs.borderTopWidth) + parseFloat(cs.paddingTop),
					right: cr.right - parseFloat(cs.borderRightWidth) - parseFloat(cs.paddingRight), bottom: cr.bottom - parseFloat(cs.borderBottomWidth) - parseFloat(cs.paddingBottom)};
				// (a big font's glyph box may stand a little past its line)
				const tol = Math.max(2, parseFloat(cs0.fontSize) * 0.1);
				if (box.left < inner.left - tol || box.top < inner.top - tol || box.right > inner.right + tol || box.bottom > inner.bottom + tol) {
					bad.push(name + ': outside its card .' + card.className.split(' ')[0] + ' ' + JSON.stringify([box.left - inner.left, box.top - inner.top, inner.right - box.right, inner.bottom - box.bottom].map(Math.round)));
				}
			}
			if (!ellipsis && el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).display !== 'inline') bad.push(name + ': overflows its box (' + el.scrollWidth + ' > ' + el.clientWidth + ')');
			boxes.push({name, el, box});
		}
	}
	for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
		const a = boxes[i], b = boxes[j];
		if (a.el.contains(b.el) || b.el.contains(a.el)) continue;
		const x = Math.min(a.box.right, b.box.right) - Math.max(a.box.left, b.box.left);
		const y = Math.min(a.box.bottom, b.box.bottom) - Math.max(a.box.top, b.box.top);
		if (x > 1 && y > 1) bad.push(a.name + ' overlaps ' + b.name);
	}
	if (document.documentElement.scrollHeight > vh || document.documentElement.scrollWidth > vw) bad.push('the page scrolls');
	return bad;
})()`

// screenText is every piece of text on the screen that must fit.
var screenText = []string{
	".screen__head .brand", "#connection-status", ".screen__tool",
	".score__team", "#blue-score", "#red-score", ".score__online", ".score__vs", ".tug__pct", ".total__label", "#total-taps",
	".round__label", ".round__clock", ".round__headline", ".round__final", ".round__top", ".round__next",
	".screen__cta", ".screen__url", ".board__title", ".board__rank", ".board__name", ".board__taps", ".board__empty",
	".lobby__title", ".lobby__sub", ".lobby__names li", ".podium__title", ".podium__name", ".podium__taps", ".podium__block",
}

// screenProse are the sentences among them: they may take two lines.
var screenProse = []string{".board__empty", ".lobby__sub", ".screen__url"}

func (p *player) fitProblems() []string {
	p.t.Helper()
	sel, _ := json.Marshal(screenText)
	prose, _ := json.Marshal(screenProse)
	return eval[[]string](p, fmt.Sprintf(fitJS, sel, prose))
}

// showRound replaces the page's #round with the server's own rendering of
// r, as a live frame would: the real template, app.js and screen.js, for
// round states whose numbers a test cannot tap to.
func (p *player) showRound(teams game.Teams, r game.RoundState) {
	p.t.Helper()
	parts := views.StateParts(game.Snapshot{Round: r, Teams: teams}, views.GameTop)
	var b strings.Builder
	if err := parts[views.PartLeaderboard-1].Render(context.Background(), &b); err != nil {
		p.t.Fatal(err)
	}
	html, _ := json.Marshal(b.String())
	eval[bool](p, fmt.Sprintf(`(() => { htmx.swap(document.body, %s, {swapStyle: 'none'}); return true; })()`, html))
}

// The presenter screen with 7-digit scores per team, at the sizes of the
// projectors an event meets: every number and label on one line, inside
// the viewport, unclipped and overlapping nothing, in open play, in the
// countdown, at the bell and with the winner banner. Screenshots
// screen-7digit-{1920,1280,1024}.png and screen-7digit-{countdown,bell,final}-*.png.
func TestScreenFitsSevenDigitScores(t *testing.T) {
	e := newEnvWith(t, map[string]string{"ADMIN_TOKEN": e2eAdminToken})
	e.importState(bigPlayers())
	e.setTeams(`{"blue":{"name":"Clever Cats","color":"#6d28d9"},"red":{"name":"Dogs of Thunder","color":"#0f766e"}}`)
	browser := newBrowser(t)
	screen := newPlayer(t, browser, "screen")
	screen.do(chromedp.EmulateViewport(1920, 1080), chromedp.Navigate(e.base+"/screen"),
		chromedp.WaitVisible(chromedp.CSS(".screen__qr svg")))
	screen.waitConnected(10*time.Second, "live")
	// Grouped in the viewer's locale ("9,999,999" in en-US, "9.999.999" in
	// de, "9 999 999" in fr): the digits, with separators between them.
	grouped := func(text, digits string) bool {
		return strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, text) == digits && len([]rune(text)) == len(digits)+(len(digits)-1)/3
	}
	screen.waitView(liveWithin, "7-digit scores with separators", func(v view) bool {
		return grouped(v.Blue, "9999999") && grouped(v.Red, "9999999") && grouped(v.Total, "19999998")
	})
	if s := eval[string](screen, `document.querySelector('#leaderboard .board__taps').firstChild.textContent`); !grouped(s, "9876543") {
		t.Errorf("top row's taps %q, want 9,876,543 grouped", s)
	}
	if lobby := eval[bool](screen, `!document.getElementById('screen-lobby').hidden`); lobby {
		t.Error("the lobby shows over a game with taps")
	}

	sizes := []struct {
		name string
		w, h int64
	}{{"1920", 1920, 1080}, {"1280", 1280, 720}, {"1024", 1024, 768}}
	check := func(state string) {
		for _, sz := range sizes {
			screen.do(chromedp.EmulateViewport(sz.w, sz.h))
			time.Sleep(500 * time.Millisecond) // the tug bar animates; screen.js fits every 200 ms
			if bad := screen.fitProblems(); len(bad) > 0 {
				t.Errorf("%s at %dx%d:\n  %s", state, sz.w, sz.h, strings.Join(bad, "\n  "))
			}
			// Each team's name lines up with its score: blue on the left
			// edge, red on the right.
			if off := eval[float64](screen, `(() => { const r = s => document.querySelector(s).getBoundingClientRect();
				return Math.max(Math.abs(r('.team-blue .score__team').left - r('#blue-score').left), Math.abs(r('.team-red .score__team').right - r('#red-score').right)); })()`); off > 2 {
				t.Errorf("%s at %dx%d: a team's name is %.0f px off its score's edge", state, sz.w, sz.h, off)
			}
			name := "screen-7digit-" + sz.name
			if state != "open play" {
				name = "screen-7digit-" + state + "-" + sz.name
			}
			screen.screenshot(name, sz.w, sz.h, false)
		}
	}
	check("open play")

	now := time.Now().UnixMilli()
	teams := e.state().Teams
	screen.showRound(teams, game.RoundState{Number: 12, Mode: game.ModeTimed, Status: game.StatusCountdown, StartsAt: now + 60_000, EndsAt: now + 120_000})
	screen.waitRound(2*time.Second, "countdown", func(v roundView) bool { return strings.HasPrefix(v.Clock, "Starts in") })
	check("countdown")

	screen.showRound(teams, game.RoundState{Number: 12, Mode: game.ModeTimed, Status: game.StatusOver, StartsAt: now - 60_000, EndsAt: now - 100})
	screen.waitRound(2*time.Second, "the bell", func(v roundView) bool { return v.Clock == "Time! Counting the last taps…" })
	check("bell")

	red := "red"
	top := game.LeaderboardEntry{ID: "p3", Username: "Kim", Team: game.Red, TapCount: 9_876_543, Rank: 1}
	screen.showRound(teams, game.RoundState{Number: 12, Mode: game.ModeTimed, Status: game.StatusOver, StartsAt: now - 60_000, EndsAt: now - 5000,
		NextStartsAt: now + 600_000, Winner: &red, Final: true, Blue: 9_999_999, Red: 9_999_999 + 1, TopTapper: &top})
	screen.waitRound(2*time.Second, "the winner banner", func(v roundView) bool { return v.Headline == "Dogs of Thunder wins!" })
	// The top 3, each with their name and their taps grouped like the board's.
	podium := eval[[]string](screen, `[...document.querySelectorAll('#screen-podium:not([hidden]) .podium__place')].map(li =>
		li.querySelector('.podium__block').textContent + ' ' + li.querySelector('.podium__name').textContent + ' ' + li.querySelector('.podium__taps').textContent)`)
	want := []struct{ head, digits string }{{"1 Kim", "9876543"}, {"2 Maximiliana Thunderclap", "4999999"}, {"3 Zoë", "4000000"}}
	if len(podium) != len(want) {
		t.Errorf("the podium shows %q, want the top 3", podium)
	}
	for i := range min(len(podium), len(want)) {
		if taps, ok := strings.CutPrefix(podium[i], want[i].head+" "); !ok || !grouped(taps, want[i].digits) {
			t.Errorf("podium place %d shows %q, want %s with %s taps grouped", i+1, podium[i], want[i].head, want[i].digits)
		}
	}
	// Its taps are fitted like every other count (app.css, "numbers that
	// fit"): a .num with its num--wN class in a .fit, not screen.js's --chars.
	if bad := eval[[]string](screen, `[...document.querySelectorAll('#screen-podium .podium__taps')].filter(el => {
		const n = el.querySelector(':scope > .num[data-n]');
		return !el.classList.contains('fit') || !n || !n.classList.contains('num--w' + n.textContent.length) || el.style.getPropertyValue('--chars') !== '';
	}).map(el => el.outerHTML)`); len(bad) > 0 {
		t.Errorf("podium taps not fitted as counts are: %q", bad)
	}
	check("final")

	// In German the screen groups with dots, once: app.js formats every
	// count and screen.js's podium and lobby use the same formatter.
	screen.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: "de-DE"})
		return err
	}), chromedp.EmulateViewport(1280, 720), chromedp.Navigate(e.base+"/screen"), chromedp.WaitVisible(chromedp.CSS(".screen__qr svg")))
	screen.waitConnected(10*time.Second, "live")
	screen.waitView(liveWithin, "German numbers", func(v view) bool {
		return v.Blue == "9.999.999" && v.Red == "9.999.999" && v.Total == "19.999.998"
	})
	if s := eval[string](screen, `[...document.querySelectorAll('#leaderboard .board__taps .num')].map(e => e.textContent).join(' ')`); s != "9.876.543 4.999.999 4.000.000 999.999 123.456 1" {
		t.Errorf("the board's taps in German: %q", s)
	}
}

// Before the first tap the screen is a lobby: how many players are here
// and the newest names, kept current as players join; the first tap turns
// it into the board. The fullscreen and sound buttons are there, sound off
// until pressed. Screenshots screen-lobby-{1920,1024}.png.
func TestScreenLobby(t *testing.T) {
	e := newEnvWith(t, map[string]string{"ADMIN_TOKEN": e2eAdminToken})
	e.apiJoin("Zoë")
	e.apiJoin("Kim")
	browser := newBrowser(t)
	screen := newPlayer(t, browser, "screen")
	screen.do(chromedp.EmulateViewport(1920, 1080), chromedp.Navigate(e.base+"/screen"),
		chromedp.WaitVisible(chromedp.CSS(".screen__qr svg")))
	screen.waitConnected(10*time.Second, "live")
	lobby := func() string {
		return eval[string](screen, `(() => { const l = document.getElementById('screen-lobby'); return l.hidden ? 'hidden' : l.querySelector('.lobby__title').textContent + ' | ' + [...l.querySelectorAll('li')].map(li => li.textContent).join(', '); })()`)
	}
	if got := lobby(); got != "2 players here | Kim, Zoë" {
		t.Fatalf("lobby %q, want 2 players with Kim newest", got)
	}
	e.apiJoin("Maximiliana Thunderclap")
	deadline := time.Now().Add(8 * time.Second)
	for lobby() != "3 players here | Maximiliana Thunderclap, Kim, Zoë" {
		if time.Now().After(deadline) {
			t.Fatalf("the lobby did not show the third player: %q", lobby())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, sz := range []struct {
		name string
		w, h int64
	}{{"1920", 1920, 1080}, {"1024", 1024, 768}} {
		screen.do(chromedp.EmulateViewport(sz.w, sz.h))
		time.Sleep(500 * time.Millisecond)
		if bad := screen.fitProblems(); len(bad) > 0 {
			t.Errorf("lobby at %dx%d:\n  %s", sz.w, sz.h, strings.Join(bad, "\n  "))
		}
		screen.screenshot("screen-lobby-"+sz.name, sz.w, sz.h, false)
	}
	if got := eval[string](screen, `[...document.querySelectorAll('.screen__tool')].filter(b => !b.hidden).map(b => b.textContent + ':' + b.getAttribute('aria-pressed')).join(' ')`); got != "Sound off:false Fullscreen:null" {
		t.Errorf("screen buttons %q", got)
	}
	screen.do(chromedp.Click(chromedp.CSS("#screen-sound")))
	if got := eval[string](screen, `document.getElementById('screen-sound').textContent + ':' + document.getElementById('screen-sound').getAttribute('aria-pressed')`); got != "Sound on:true" {
		t.Errorf("after a click the sound button says %q", got)
	}
	screen.do(chromedp.Click(chromedp.CSS("#screen-fullscreen")))
	deadline = time.Now().Add(3 * time.Second)
	for eval[string](screen, `document.fullscreenElement ? document.getElementById('screen-fullscreen').textContent : ''`) != "Exit fullscreen" {
		if time.Now().After(deadline) {
			t.Fatal("the Fullscreen button did not make the page fullscreen")
		}
		time.Sleep(50 * time.Millisecond)
	}
	screen.do(chromedp.Click(chromedp.CSS("#screen-fullscreen")))
	e.apiTaps("Lee", 3)
	screen.waitView(liveWithin, "the first taps", func(v view) bool { return v.Total == "3" })
	if got := lobby(); got != "hidden" {
		t.Errorf("after the first tap the lobby still shows: %q", got)
	}

	// The host names the teams: the open screen shows the names and
	// colours by itself (it reloads; the colours come from /theme.css,
	// under the CSP).
	e.setTeams(`{"blue":{"name":"Clever Cats","color":"#6d28d9"},"red":{"name":"Dogs","color":"#0f766e"}}`)
	deadline = time.Now().Add(10 * time.Second)
	for {
		got := eval[string](screen, `(() => { const t = document.querySelectorAll('.score__team'); return t.length === 2 ? t[0].textContent.trim() + ' | ' + t[1].textContent.trim() + ' | ' + getComputedStyle(document.documentElement).getPropertyValue('--blue').trim() : ''; })()`)
		if got == "▲ Clever Cats | Dogs ● | #6d28d9" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the screen did not take the new teams: %q", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	screen.waitConnected(10*time.Second, "live")
	screen.screenshot("screen-teams-1280", 1280, 720, false)
}

// The screen's sound, once the host turned it on: a beep for each of the
// last seconds of the countdown, a higher one at the start, a horn at the
// bell (WebAudio oscillators, counted by a hook on OscillatorNode.start).
func TestScreenSound(t *testing.T) {
	e := newEnv(t)
	browser := newBrowser(t)
	screen := newPlayer(t, browser, "screen")
	screen.do(chromedp.EmulateViewport(1280, 720), chromedp.Navigate(e.base+"/screen"),
		chromedp.WaitVisible(chromedp.CSS(".screen__qr svg")))
	screen.waitConnected(10*time.Second, "live")
	eval[bool](screen, `(() => {
		window.__tones = [];
		const start = OscillatorNode.prototype.start;
		OscillatorNode.prototype.start = function (...a) { window.__tones.push(Math.round(this.frequency.value)); return start.apply(this, a); };
		return true;
	})()`)
	screen.do(chromedp.Click(chromedp.CSS("#screen-sound")))
	now := time.Now().UnixMilli()
	screen.showRound(game.DefaultTeams(), game.RoundState{Number: 1, Mode: game.ModeTimed, Status: game.StatusCountdown, StartsAt: now + 2500, EndsAt: now + 4000})
	screen.waitRound(8*time.Second, "the bell", func(v roundView) bool { return v.Clock == "Time! Counting the last taps…" })
	time.Sleep(500 * time.Millisecond)
	tones := eval[[]int](screen, `window.__tones`)
	count := map[int]int{}
	for _, f := range tones {
		count[f]++
	}
	t.Logf("tones: %v", tones)
	// 660: the toggle's own click; 880: "3…"/"2…"/"1…" (2 or 3, as the
	// countdown started 2.5 s out); 1320: TAP!; 220/262/222: the horn.
	if count[660] != 1 || count[880] < 2 || count[1320] != 1 || count[220] != 1 || count[262] != 1 {
		t.Errorf("tones %v: want the toggle's, 2–3 countdown beeps, the start and the horn", tones)
	}
}

// A full room in the lobby: 30 players with long names; the screen shows
// as many whole names as fit (never half a row) at 1024×768 and
// 1920×1080. Screenshots screen-lobby-30-{1024,1920}.png.
func TestScreenLobbyFullRoom(t *testing.T) {
	e := newEnv(t)
	for i := range 30 {
		e.apiJoin(fmt.Sprintf("Maximiliana Thunder %02d", i))
	}
	browser := newBrowser(t)
	screen := newPlayer(t, browser, "screen")
	screen.do(chromedp.EmulateViewport(1024, 768), chromedp.Navigate(e.base+"/screen"), chromedp.WaitVisible(chromedp.CSS(".screen__qr svg")))
	screen.waitConnected(10*time.Second, "live")
	for _, sz := range []struct {
		name string
		w, h int64
	}{{"1024", 1024, 768}, {"1920", 1920, 1080}} {
		screen.do(chromedp.EmulateViewport(sz.w, sz.h))
		time.Sleep(800 * time.Millisecond) // a name's entrance lasts 0.6 s
		if bad := screen.fitProblems(); len(bad) > 0 {
			t.Errorf("%dx%d:\n  %s", sz.w, sz.h, strings.Join(bad, "\n  "))
		}
		if n := eval[int](screen, `document.querySelectorAll('#lobby-names li:not([hidden])').length`); n < 4 {
			t.Errorf("%dx%d: only %d names show", sz.w, sz.h, n)
		}
		screen.screenshot("screen-lobby-30-"+sz.name, sz.w, sz.h, false)
	}
}
