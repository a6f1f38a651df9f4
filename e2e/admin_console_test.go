package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tapwars/tapwars/game"
)

// consoleView is what the host console shows of the round.
type consoleView struct {
	State    string `json:"state"`
	Clock    string `json:"clock"`
	Winner   string `json:"winner"`
	Stop     bool   `json:"stop"`     // the stop button shows
	First    string `json:"first"`    // id of the first card in the page
	Text     string `json:"text"`     // all the page's visible text
	Overflow string `json:"overflow"` // what sticks out (page wider than the screen, a table out of its card)
}

const consoleJS = `(() => {
	if (!document.documentElement || !document.body || document.readyState === 'loading') return {};
	const t = sel => { const e = document.querySelector(sel); return e ? e.textContent.trim() : ''; };
	const stop = document.getElementById('admin-stop');
	const out = [];
	if (document.documentElement.scrollWidth > innerWidth) out.push('page ' + document.documentElement.scrollWidth + ' px wide in ' + innerWidth);
	// A phone widens its layout viewport to fit content wider than itself
	// (and zooms out), so innerWidth alone cannot show it.
	if (screen.width < 600 && innerWidth > screen.width + 1) out.push('layout ' + innerWidth + ' px wide on a ' + screen.width + ' px screen');
	// Anything past the screen's right edge that is not inside a box that
	// scrolls or clips it (a page can hide its overflow and still push text
	// off the screen).
	const clipped = el => { for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) { if (getComputedStyle(a).overflowX !== 'visible') return true; } return false; };
	for (const el of document.querySelectorAll('main *')) {
		const r = el.getBoundingClientRect();
		if (el.offsetParent && r.width > 0 && r.right > innerWidth + 1 && !clipped(el)) { out.push((el.id || el.className || el.tagName) + ' ends at ' + Math.round(r.right) + ' px in ' + innerWidth); break; }
	}
	for (const tb of document.querySelectorAll('.admin-table')) {
		const card = tb.closest('.admin-card, .admin-stats');
		const box = tb.parentElement.getBoundingClientRect(), c = card.getBoundingClientRect();
		if (tb.offsetParent && (box.right > c.right + 1 || box.left < c.left - 1)) out.push('a table sticks out of its card');
	}
	return {state: t('.admin-state'), clock: t('.admin-console__clock'), winner: t('.admin-console__winner'),
		stop: !!stop && !stop.hidden, first: (document.querySelector('main.admin > section') || {}).id || '',
		text: document.body.innerText, overflow: out.join('; ')};
})()`

func (p *player) console() consoleView { return eval[consoleView](p, consoleJS) }

// waitConsole polls p's host console until ok, failing after timeout.
func (p *player) waitConsole(timeout time.Duration, what string, ok func(consoleView) bool) consoleView {
	p.t.Helper()
	return waitUntil(p, 100*time.Millisecond, timeout, what, p.console, ok)
}

// The host console at 1280 px and on a 375 px phone: the round's state
// first, with links to the screen and the history; a timed round started
// from its form goes countdown → playing → final with the winner, the
// stop button only while timed rounds run, and no message that says
// something no longer true; nothing wider than the phone; the kick page
// in host words. Screenshots admin-1280.png, admin-375.png,
// admin-375-final.png, admin-kick-375.png.
func TestHostConsole(t *testing.T) {
	e := newEnvWith(t, map[string]string{"ADMIN_TOKEN": e2eAdminToken})
	e.apiTaps("Maximiliana Thunderclap", 12)
	e.apiTaps("Zoë", 7)
	browser := newBrowser(t)
	host := newPlayer(t, browser, "host")
	host.do(chromedp.EmulateViewport(375, 800, chromedp.EmulateMobile), chromedp.Navigate(e.base+"/admin"),
		chromedp.WaitVisible(chromedp.CSS("#admin-token")),
		chromedp.SendKeys(chromedp.CSS("#admin-token"), e2eAdminToken),
		chromedp.Submit(chromedp.CSS("#admin-token")),
		chromedp.WaitVisible(chromedp.CSS("#admin-console")))

	v := host.waitConsole(5*time.Second, "open play", func(v consoleView) bool { return v.State != "" })
	if v.First != "admin-console" || v.State != "Open play" || v.Stop {
		t.Errorf("open play: %+v", v)
	}
	for _, href := range []string{"/screen", "/rounds"} {
		if !eval[bool](host, `!!document.querySelector('#admin-console a[href="`+href+`"]')`) {
			t.Errorf("no link to %s on the console", href)
		}
	}
	if !strings.Contains(v.Text, "Online: Blue / Red") {
		t.Errorf("no players online per team: %q", v.Text)
	}
	if v.Overflow != "" {
		t.Errorf("375 px: %s", v.Overflow)
	}
	host.screenshot("admin-375", 375, 800, true)
	host.do(chromedp.EmulateViewport(1280, 900))
	if v := host.console(); v.Overflow != "" {
		t.Errorf("1280 px: %s", v.Overflow)
	}
	host.screenshot("admin-1280", 1280, 900, false)

	// A 3-second round with a 2-second countdown, from the form.
	host.do(chromedp.EmulateViewport(375, 800, chromedp.EmulateMobile),
		chromedp.SetValue(chromedp.CSS("#round-seconds"), "3"),
		chromedp.SetValue(chromedp.CSS("#round-countdown"), "2"),
		chromedp.Click(chromedp.CSS(".admin-start button[type=submit]")))
	host.waitConsole(5*time.Second, "the countdown", func(v consoleView) bool {
		return v.State == "Countdown" && strings.HasPrefix(v.Clock, "Starts in") && v.Stop
	})
	host.waitConsole(5*time.Second, "play", func(v consoleView) bool { return v.State == "Playing" && strings.HasSuffix(v.Clock, "left") })
	kim := e.apiTaps("Kim", 9) // the round's only taps: Kim's team wins
	v = host.waitConsole(15*time.Second, "the final result", func(v consoleView) bool { return v.State == "Final" })
	winner := map[game.Team]string{game.Blue: "Blue wins!", game.Red: "Red wins!"}[kim]
	if !strings.Contains(v.Winner, winner) || !strings.Contains(v.Winner, "Kim (9 taps)") {
		t.Errorf("winner line %q, want %q and Kim's 9 taps", v.Winner, winner)
	}
	if strings.Contains(strings.ToLower(v.Text), "countdown is on") || strings.Contains(v.Text, "Starts in") {
		t.Errorf("after the bell the console still speaks of the countdown: %q", v.Text)
	}
	if v.Overflow != "" {
		t.Errorf("375 px, final: %s", v.Overflow)
	}
	host.screenshot("admin-375-final", 375, 800, true)

	// Stop: back to open play; the stop button goes.
	host.do(chromedp.Click(chromedp.CSS("#admin-stop button")))
	host.waitConsole(5*time.Second, "open play after stop", func(v consoleView) bool { return v.State == "Open play" && !v.Stop })

	// The kick page speaks to a host, not an engineer.
	id := eval[string](host, `document.querySelector('.admin-table .admin-id').textContent`)
	host.do(chromedp.Navigate(e.base+"/admin/kick?id="+id), chromedp.WaitVisible(chromedp.CSS(".admin-confirm")))
	text := eval[string](host, `document.querySelector('.admin-confirm').innerText`)
	for _, word := range []string{"token", "instance", "Kafka"} {
		if strings.Contains(text, word) {
			t.Errorf("the kick page says %q: %q", word, text)
		}
	}
	host.screenshot("admin-kick-375", 375, 800, true)

	// Teams: a pale sponsor yellow is refused with a shade that passes;
	// then "Cats vs Dogs" in readable colours shows on the console.
	host.do(chromedp.Navigate(e.base+"/admin"), chromedp.WaitVisible(chromedp.CSS("#blue-name")),
		chromedp.SetValue(chromedp.CSS("#blue-name"), "Cats"), chromedp.SetValue(chromedp.CSS("#blue-color"), "#ffd23f"),
		chromedp.SetValue(chromedp.CSS("#red-name"), "Dogs"),
		chromedp.Click(chromedp.CSS(".admin-teams button[type=submit]")), chromedp.WaitVisible(chromedp.CSS(".admin-error")))
	if msg := eval[string](host, `document.querySelector('.admin-error').textContent`); !strings.Contains(msg, "first (blue) team's colour #ffd23f") || !strings.Contains(msg, "darker shade such as #") {
		t.Errorf("a pale colour: %q", msg)
	}
	host.do(chromedp.Navigate(e.base+"/admin"), chromedp.WaitVisible(chromedp.CSS("#blue-name")),
		chromedp.SetValue(chromedp.CSS("#blue-name"), "Cats"), chromedp.SetValue(chromedp.CSS("#blue-color"), "#7c2d12"),
		chromedp.SetValue(chromedp.CSS("#red-name"), "Dogs"),
		chromedp.Click(chromedp.CSS(".admin-teams button[type=submit]")), chromedp.WaitVisible(chromedp.CSS(".admin-flash")))
	v = host.waitConsole(5*time.Second, "the new names", func(v consoleView) bool { return strings.Contains(v.Text, "Online: Cats / Dogs") })
	if !strings.Contains(v.Text, "You named the teams Cats and Dogs.") || v.Overflow != "" {
		t.Errorf("after naming the teams: %q (overflow %q)", v.Text, v.Overflow)
	}
	host.screenshot("admin-teams-375", 375, 800, true)
}
