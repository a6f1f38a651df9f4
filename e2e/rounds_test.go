package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tapwars/tapwars/game"
)

// roundView is what a page shows of the round.
type roundView struct {
	Clock    string `json:"clock"`
	Headline string `json:"headline"`
	Final    string `json:"final"`
	Top      string `json:"top"`
	Next     string `json:"next"`
	Why      string `json:"why"`
	Announce string `json:"announce"`
	Disabled bool   `json:"disabled"`
}

const roundViewJS = `(() => {
	const t = (sel) => { const e = document.querySelector(sel); return e ? e.textContent.trim() : ''; };
	const b = document.getElementById('tap-button');
	const why = document.getElementById('round-why');
	return {clock: t('#round .round__clock'), headline: t('#round .round__headline'), final: t('#round .round__final'),
		top: t('#round .round__top'), next: t('#round .round__next'), why: why && !why.hidden ? why.textContent : '',
		announce: t('#round-announce'), disabled: !!(b && b.disabled)};
})()`

func (p *player) round() roundView { return eval[roundView](p, roundViewJS) }

// startRound starts a timed round now, as the host's Start button does: a
// countdown, then play.
func (e *env) startRound(countdown, play time.Duration) game.RoundSchedule {
	e.t.Helper()
	now := time.Now()
	sc, err := e.m.Game.StartTimedRound(context.Background(), game.RoundSchedule{
		CountdownAt: now.UnixMilli(), StartsAt: now.Add(countdown).UnixMilli(), EndsAt: now.Add(countdown + play).UnixMilli(),
	}, now)
	if err != nil {
		e.t.Fatal(err)
	}
	return sc
}

// waitRound polls p's round view until ok, failing after timeout.
func (p *player) waitRound(timeout time.Duration, what string, ok func(roundView) bool) roundView {
	p.t.Helper()
	return waitUntil(p, 50*time.Millisecond, timeout, what, p.round, ok)
}

// A 5-second round with a 2-second countdown, two players and the
// presenter screen: the countdown shows everywhere with the button
// disabled and why, taps during play count, the button is disabled after
// the bell, and the same winner and final scores appear on both players'
// pages and on the screen. Screenshots: the screen at 1920×1080 and a
// phone at 375 px with the banner.
func TestTimedRoundInTheBrowser(t *testing.T) {
	e := newEnv(t)
	browser := newBrowser(t)
	ann, bob := twoPlayers(t, e, browser, "/", "live")
	screen := newPlayer(t, browser, "screen")
	screen.do(chromedp.EmulateViewport(1920, 1080), chromedp.Navigate(e.base+"/screen"), chromedp.WaitVisible(chromedp.CSS(".screen__qr svg")))
	screen.waitConnected(10*time.Second, "live")

	sc := e.startRound(2*time.Second, 5*time.Second)
	counting := func(v roundView) bool { return v.Clock == "2…" || v.Clock == "1…" }
	for _, p := range []*player{ann, bob} {
		v := p.waitRound(1500*time.Millisecond, "countdown", func(v roundView) bool { return counting(v) && v.Disabled })
		if !strings.Contains(v.Why, "starts in") || !strings.Contains(v.Announce, fmt.Sprintf("Round %d starts in", sc.Number)) {
			t.Errorf("%s during the countdown: %+v", p.name, v)
		}
	}
	screen.waitRound(1500*time.Millisecond, "countdown on the screen", counting)
	screen.screenshot("round-screen-countdown", 1920, 1080, false)

	// Play: the buttons come back; Ann taps 6, Bob 4.
	for _, p := range []*player{ann, bob} {
		p.waitRound(3*time.Second, "play", func(v roundView) bool {
			return !v.Disabled && (v.Clock == "TAP!" || strings.HasSuffix(v.Clock, "left"))
		})
	}
	ann.tap(6)
	bob.tap(4)

	// The bell: buttons disabled, then the same banner everywhere.
	for _, p := range []*player{ann, bob} {
		p.waitRound(time.Until(time.UnixMilli(sc.EndsAt))+time.Second, "the bell", func(v roundView) bool { return v.Disabled })
	}
	final := func(v roundView) bool { return v.Headline != "" }
	within := time.Until(time.UnixMilli(sc.EndsAt)) + 10*time.Second
	a := ann.waitRound(within, "the winner banner", final)
	b := bob.waitRound(within, "the winner banner", final)
	s := screen.waitRound(within, "the winner banner", final)
	t.Logf("banner: %q %q %q; announced %q; why %q", a.Headline, a.Final, a.Top, a.Announce, a.Why)
	if a.Headline != b.Headline || a.Headline != s.Headline || a.Final != b.Final || a.Final != s.Final || a.Top != s.Top {
		t.Fatalf("the pages disagree:\nAnn %+v\nBob %+v\nscreen %+v", a, b, s)
	}
	rs := e.state().Round
	want := map[string]int64{ann.team: 6}
	want[bob.team] += 4
	if !rs.Final || rs.Blue != want["blue"] || rs.Red != want["red"] {
		t.Fatalf("result %+v, want blue %d red %d", rs, want["blue"], want["red"])
	}
	if wantHead := map[string]string{"blue": "Blue wins!", "red": "Red wins!"}[ann.team]; a.Headline != wantHead || !strings.Contains(a.Top, "Ann (6 taps)") {
		t.Fatalf("banner %q / %q, want %q with Ann on top", a.Headline, a.Top, wantHead)
	}
	if !strings.Contains(a.Announce, "is over") || !a.Disabled || !strings.Contains(a.Why, "over") {
		t.Fatalf("after the result: %+v", a)
	}
	if !screen.fitsAt(1920, 1080) {
		t.Error("1920x1080: the screen with the banner scrolls")
	}
	screen.screenshot("round-screen-1920", 1920, 1080, false)
	if !screen.fitsAt(1280, 720) {
		t.Error("1280x720: the screen with the banner scrolls")
	}
	screen.screenshot("round-screen-1280", 1280, 720, false)
	ann.screenshot("round-phone-375", 375, 800, true)
}

// Phones whose clocks are 40 s slow and 40 s fast see the same round as the
// server: the countdown, the button enabled for play and disabled at the
// bell, and their taps counted. (A page that trusted its phone's clock
// showed the slow phone "Starts in 0:42" with its button disabled for the
// whole round.)
func TestRoundOnPhonesWithWrongClocks(t *testing.T) {
	e := newEnv(t)
	browser := newBrowser(t)
	ann := newPlayer(t, browser, "Ann")
	bob := newPlayer(t, browser, "Bob")
	ann.skewClock(-40 * time.Second)
	bob.skewClock(40 * time.Second)
	for _, p := range []*player{ann, bob} {
		p.join(e.base, "/")
		p.waitConnected(10*time.Second, "live")
	}
	if skew := eval[int64](ann, `Date.now()`) - time.Now().UnixMilli(); skew > -39000 || skew < -41000 {
		t.Fatalf("Ann's clock is %d ms off, want -40 s", skew)
	}

	sc := e.startRound(3*time.Second, 4*time.Second)
	for _, p := range []*player{ann, bob} {
		p.waitRound(time.Until(time.UnixMilli(sc.StartsAt))-200*time.Millisecond, "countdown", func(v roundView) bool {
			return (v.Clock == "3…" || v.Clock == "2…" || v.Clock == "1…") && v.Disabled
		})
	}
	for _, p := range []*player{ann, bob} {
		p.waitRound(time.Until(time.UnixMilli(sc.StartsAt))+time.Second, "play", func(v roundView) bool {
			return !v.Disabled && (v.Clock == "TAP!" || strings.HasSuffix(v.Clock, "left"))
		})
	}
	ann.tap(3)
	bob.tap(2)
	for _, p := range []*player{ann, bob} {
		v := p.waitRound(time.Until(time.UnixMilli(sc.EndsAt))+time.Second, "the bell", func(v roundView) bool { return v.Disabled })
		if late := time.Since(time.UnixMilli(sc.EndsAt)); late < -300*time.Millisecond {
			t.Fatalf("%s's button was disabled %v before the bell (%+v)", p.name, -late, v)
		}
	}
	within := time.Until(time.UnixMilli(sc.EndsAt)) + 10*time.Second
	ann.waitRound(within, "the winner banner", func(v roundView) bool { return v.Headline != "" })
	rs := e.state().Round
	want := map[string]int64{ann.team: 3}
	want[bob.team] += 2
	if !rs.Final || rs.Blue != want["blue"] || rs.Red != want["red"] {
		t.Fatalf("result %+v, want blue %d red %d", rs, want["blue"], want["red"])
	}
}
