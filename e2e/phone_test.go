package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/static"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/views"
)

// The phone sizes every phone test covers: small Android, iPhone, large iPhone.
var phoneWidths = []int64{320, 375, 430}

// newPhoneEnv is an instance with a known admin token.
func newPhoneEnv(t *testing.T, vars map[string]string) *env {
	t.Helper()
	all := map[string]string{"ADMIN_TOKEN": e2eAdminToken}
	for k, v := range vars {
		all[k] = v
	}
	return newEnvWith(t, all)
}

// asPhone sets the player's viewport to a phone w px wide (touch, 2× pixels).
func (p *player) asPhone(w, h int64) {
	p.t.Helper()
	p.do(chromedp.EmulateViewport(w, h, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	time.Sleep(200 * time.Millisecond) // layout settles
}

// shot saves the viewport (not the whole page) as testdata/artifacts/<name>.png.
func (p *player) shot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	saveArtifact(p.t, name, png)
}

// admin calls the admin API with the test's token.
func (e *env) admin(method, path string, body []byte) []byte {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.m.URL()+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e2eAdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		e.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return b
}

// setScores rewrites the game through export and import: each team's first
// player gets the team's whole score (taps of id, if listed, are mine).
func (e *env) setScores(blue, red int64, mine map[string]int64) {
	e.t.Helper()
	var ex store.Export
	if err := json.Unmarshal(e.admin("GET", "/admin/export", nil), &ex); err != nil {
		e.t.Fatal(err)
	}
	left := map[game.Team]int64{game.Blue: blue, game.Red: red}
	for i := range ex.Players {
		if n, ok := mine[ex.Players[i].ID]; ok {
			ex.Players[i].TapCount = n
			left[ex.Players[i].Team] -= n
		} else {
			ex.Players[i].TapCount = 0
		}
	}
	for i := range ex.Players {
		u := &ex.Players[i]
		if _, ok := mine[u.ID]; !ok && left[u.Team] > 0 {
			u.TapCount, left[u.Team] = left[u.Team], 0
		}
	}
	ex.BlueScore, ex.RedScore, ex.TotalTaps = blue, red, blue+red
	b, _ := json.Marshal(ex)
	e.admin("POST", "/admin/import", b)
	testenv.Eventually(e.t, 10*time.Second, func() string {
		if s := e.state(); s.GameState.TotalTaps != blue+red {
			return fmt.Sprintf("total %d after the import", s.GameState.TotalTaps)
		}
		return ""
	})
}

// numberLayout is how each visible count sits on the page: wrapped onto
// more than one line, wider than its box (clipped), outside the viewport,
// or overlapping another element's text.
const numberLayoutJS = `(() => {
	const out = [];
	const vis = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden'; };
	const nums = [...document.querySelectorAll('.num')].filter(vis);
	for (const n of nums) {
		const r = n.getBoundingClientRect();
		const lh = parseFloat(getComputedStyle(n).fontSize);
		const where = (n.id || n.parentElement.className) + ' "' + n.textContent + '"';
		const range = document.createRange(); range.selectNodeContents(n);
		if (range.getClientRects().length > 1 || r.height > lh * 1.9) out.push(where + ' wraps (' + r.height + 'px at ' + lh + 'px)');
		if (n.scrollWidth > n.clientWidth + 1 && n.clientWidth > 0) out.push(where + ' clipped: ' + n.scrollWidth + ' > ' + n.clientWidth);
		if (r.left < -0.5 || r.right > innerWidth + 0.5) out.push(where + ' off-screen: ' + r.left + '..' + r.right);
		let box = n.parentElement;
		while (box && getComputedStyle(box).display.startsWith('inline')) box = box.parentElement;
		const b = box.getBoundingClientRect();
		if (r.left < b.left - 0.5 || r.right > b.right + 0.5) out.push(where + ' overflows its box ' + box.className + ': ' + r.left + '..' + r.right + ' vs ' + b.left + '..' + b.right);
	}
	// No two of the scoreboard's parts overlap.
	const parts = [...document.querySelectorAll('.score__team, .score__value .num, .score__online, .score__vs, .total, .tug, .round__clock, .round__team, .mystats__item')].filter(vis);
	for (let i = 0; i < parts.length; i++) for (let j = i + 1; j < parts.length; j++) {
		const a = parts[i].getBoundingClientRect(), b = parts[j].getBoundingClientRect();
		if (parts[i].contains(parts[j]) || parts[j].contains(parts[i])) continue;
		if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5)
			out.push('overlap: ' + parts[i].className + ' "' + parts[i].textContent.trim() + '" and ' + parts[j].className + ' "' + parts[j].textContent.trim() + '"');
	}
	if (document.documentElement.scrollWidth > innerWidth) out.push('page scrolls sideways: ' + document.documentElement.scrollWidth);
	return out;
})()`

// Seven-digit scores on phones from 320 to 430 px: every count on the game
// page sits on one line inside its box, nothing overlaps, the page does not
// scroll sideways, and the numbers carry the viewer's thousands separators.
func TestNumbersFitOnPhones(t *testing.T) {
	e := newPhoneEnv(t, nil)
	browser := newBrowser(t)
	ann := newPlayer(t, browser, "Annabelle Longname")
	ann.join(e.base, "/")
	for _, name := range []string{"Bob", "Cy", "Dee"} { // teams are balanced: two each
		e.apiTaps(name, 1)
	}
	e.setScores(9_999_999, 9_876_543, map[string]int64{ann.id: 1_234_567})
	defer func() { // the leaderboard page, with the same numbers
		ann.do(chromedp.Navigate(e.base + "/leaderboard"))
		ann.waitConnected(10*time.Second, "live")
		for _, w := range phoneWidths {
			ann.asPhone(w, 800)
			if bad := eval[[]string](ann, numberLayoutJS); len(bad) > 0 {
				t.Errorf("/leaderboard at %d px: %s", w, strings.Join(bad, "; "))
			}
			ann.shot(fmt.Sprintf("numbers-leaderboard-%d", w))
		}
	}()
	want := map[string]string{"blue": "9,999,999", "red": "9,876,543"}
	ann.do(chromedp.Navigate(e.base + "/"))
	ann.waitConnected(10*time.Second, "live")
	ann.waitView(5*time.Second, "the imported scores", func(v view) bool {
		return v.Blue == want["blue"] && v.Red == want["red"] && v.Total == "19,876,542" && v.MyTaps == "1,234,567"
	})
	for _, w := range phoneWidths {
		ann.asPhone(w, 800)
		if bad := eval[[]string](ann, numberLayoutJS); len(bad) > 0 {
			ann.shot(fmt.Sprintf("numbers-%d-bad", w))
			t.Errorf("%d px: %s", w, strings.Join(bad, "; "))
		}
		ann.shot(fmt.Sprintf("numbers-%d", w))
	}
	// The viewer's locale: the same page in German groups with dots (the
	// server's text is replaced as the page loads and on every update).
	ann.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: "de-DE"})
		return err
	}), chromedp.Navigate(e.base+"/"))
	ann.waitConnected(10*time.Second, "live")
	ann.waitView(5*time.Second, "German numbers", func(v view) bool {
		return v.Blue == "9.999.999" && v.Red == "9.876.543" && v.MyTaps == "1.234.567"
	})
	ann.asPhone(320, 800)
	if bad := eval[[]string](ann, numberLayoutJS); len(bad) > 0 {
		t.Errorf("320 px, de-DE: %s", strings.Join(bad, "; "))
	}
	ann.shot("numbers-320-de")
}

// touch is one Input.dispatchTouchEvent: the fingers down after it.
func touch(kind input.DispatchTouchEventType, points ...*input.TouchPoint) chromedp.Action[chromedp.Void] {
	if points == nil {
		points = []*input.TouchPoint{}
	}
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: kind, TouchPoints: points})
		return err
	})
}

// saveArtifact writes testdata/artifacts/<name>.png (the test artifacts;
// gitignored) and returns its path.
func saveArtifact(t *testing.T, name string, png []byte) string {
	t.Helper()
	dir := filepath.Join("testdata", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", path, len(png))
	return path
}

// Two thumbs whose touches overlap (the second lands before the first
// lifts) are two taps: 20 such pairs count 40, exactly, at each phone width;
// the page's own count moves at once and never shows more than were made.
func TestTwoThumbTapsAllCount(t *testing.T) {
	e := newEnv(t)
	browser := newBrowser(t)
	ann := newPlayer(t, browser, "Ann")
	ann.join(e.base, "/")
	ann.waitConnected(10*time.Second, "live")
	watchMyTaps(ann)
	total := 0
	for _, w := range phoneWidths {
		ann.asPhone(w, 700)
		type point struct{ X, Y float64 }
		c := eval[point](ann, `(() => { const b = document.getElementById('tap-button'); b.scrollIntoView({block: 'center'});
			const r = b.getBoundingClientRect(); return {X: r.left + r.width / 2, Y: r.top + r.height / 2}; })()`)
		id1, id2 := 1.0, 2.0
		p1 := &input.TouchPoint{X: c.X - 20, Y: c.Y, ID: &id1}
		p2 := &input.TouchPoint{X: c.X + 20, Y: c.Y + 10, ID: &id2}
		for range 20 {
			ann.do(
				touch(input.DispatchTouchEventTypeTouchStart, p1),
				touch(input.DispatchTouchEventTypeTouchStart, p1, p2),
				touch(input.DispatchTouchEventTypeTouchMove, p2),
				touch(input.DispatchTouchEventTypeTouchEnd),
			)
		}
		total += 40
		want := fmt.Sprint(total)
		ann.waitView(5*time.Second, "my taps "+want, func(v view) bool { return v.MyTaps == want })
		testenv.Eventually(t, 5*time.Second, func() string {
			if s := e.state(); s.GameState.TotalTaps != int64(total) {
				return fmt.Sprintf("server counted %d, want %d", s.GameState.TotalTaps, total)
			}
			return ""
		})
		ann.shot(fmt.Sprintf("two-thumbs-%d", w))
	}
	// The keyboard: Enter and Space on the focused button are a tap each
	// (no second one from the button's own click).
	ann.do(chromedp.Focus(chromedp.CSS("#tap-button")), chromedp.KeyEvent("\r"), chromedp.KeyEvent(" "), chromedp.KeyEvent("\r"))
	total += 3
	want := fmt.Sprint(total)
	ann.waitView(5*time.Second, "my taps "+want, func(v view) bool { return v.MyTaps == want })
	time.Sleep(300 * time.Millisecond) // anything counted twice would show now
	if s := e.state(); s.GameState.TotalTaps != int64(total) {
		t.Fatalf("server counted %d for %d touches and key presses", s.GameState.TotalTaps, total)
	}
	if max := eval[int](ann, `window.e2eMax`); max != total {
		t.Fatalf("own count showed up to %d for %d touches", max, total)
	}
	if sel := eval[string](ann, `String(getSelection())`); sel != "" {
		t.Errorf("taps selected text %q", sel)
	}
	ta := eval[string](ann, `getComputedStyle(document.getElementById('tap-button')).touchAction`)
	if ta != "none" && ta != "manipulation" {
		t.Errorf("tap button touch-action %q: double-tap zoom is possible", ta)
	}
}

// A kicked player hears it at once over the live stream (WebSocket and
// SSE), without tapping: the page says so and goes to the join page.
func TestKickedPlayerIsToldAtOnce(t *testing.T) {
	e := newPhoneEnv(t, nil)
	browser := newBrowser(t)
	for i, path := range []string{"/", "/?transport=sse"} {
		w := phoneWidths[i%len(phoneWidths)]
		p := newPlayer(t, browser, fmt.Sprintf("Kim %d", i))
		p.join(e.base, path)
		p.asPhone(w, 700)
		p.waitConnected(10*time.Second, "live")
		start := time.Now()
		e.admin("POST", "/admin/kick/"+p.id, nil)
		var told time.Duration
		testenv.Eventually(t, 3*time.Second, func() string {
			if !eval[bool](p, `(() => { const k = document.getElementById('kicked'); return !!k && !k.hidden && k.textContent.includes('host removed you'); })()`) {
				return path + ": the page does not say the player was removed"
			}
			told = time.Since(start)
			return ""
		})
		p.shot(fmt.Sprintf("kicked-%d", w))
		testenv.Eventually(t, 6*time.Second, func() string {
			if !eval[bool](p, `!!document.getElementById('join-suggested')`) {
				return path + ": not on the join page"
			}
			return ""
		})
		t.Logf("%s at %d px: told %v after the kick, on the join page %v after it", path, w, told.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
}

// Joining on a phone: one tap on "Play as <suggested name>" (a real touch),
// or typing into a box that starts empty, so the typed name is exactly what
// was typed. Both buttons show without scrolling at every phone width.
func TestJoinInOneTapOrByTyping(t *testing.T) {
	e := newEnv(t)
	browser := newBrowser(t)
	for _, w := range phoneWidths {
		one := newPlayer(t, browser, fmt.Sprintf("one tap %d", w))
		one.asPhone(w, 640)
		one.do(chromedp.Navigate(e.base+"/"), chromedp.WaitVisible(chromedp.CSS("#join-suggested")))
		type joinView struct {
			Suggested, Label, Value, Placeholder string
			QuickBottom, FormBottom, Height      float64
		}
		v := eval[joinView](one, `(() => { const b = document.getElementById('join-suggested'), u = document.getElementById('username');
			return {Suggested: b.dataset.name, Label: b.textContent.replace(/\s+/g, ' ').trim(), Value: u.value, Placeholder: u.placeholder,
				QuickBottom: b.getBoundingClientRect().bottom, FormBottom: document.querySelector('.join__form button').getBoundingClientRect().bottom, Height: innerHeight}; })()`)
		if v.Suggested == "" || v.Label != "Play as "+v.Suggested || v.Value != "" || v.Placeholder == "" {
			t.Fatalf("%d px: join page %+v", w, v)
		}
		if v.QuickBottom > v.Height || v.FormBottom > v.Height {
			t.Errorf("%d px: the join buttons end at %.0f and %.0f px, below the screen (%.0f px)", w, v.QuickBottom, v.FormBottom, v.Height)
		}
		one.shot(fmt.Sprintf("join-%d", w))
		type point struct{ X, Y float64 }
		c := eval[point](one, `(() => { const r = document.getElementById('join-suggested').getBoundingClientRect(); return {X: r.left + r.width / 2, Y: r.top + r.height / 2}; })()`)
		id := 1.0
		one.do(touch(input.DispatchTouchEventTypeTouchStart, &input.TouchPoint{X: c.X, Y: c.Y, ID: &id}), touch(input.DispatchTouchEventTypeTouchEnd),
			chromedp.WaitVisible(chromedp.CSS("#tap-button")))
		if got := eval[string](one, `document.querySelector('.me__name').textContent`); got != v.Suggested {
			t.Fatalf("%d px: one tap joined as %q, the button said %q", w, got, v.Suggested)
		}

		// Typing: tap into the box and type; nothing else ends up in the name.
		typed := newPlayer(t, browser, fmt.Sprintf("Kim from Sales %d", w))
		typed.asPhone(w, 640)
		typed.do(chromedp.Navigate(e.base+"/"), chromedp.WaitVisible(chromedp.CSS("#username")),
			chromedp.Click(chromedp.CSS("#username")), chromedp.SendKeys(chromedp.CSS("#username"), typed.name),
			chromedp.Click(chromedp.CSS(`form.join__form button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("#tap-button")))
		if got := eval[string](typed, `document.querySelector('.me__name').textContent`); got != typed.name {
			t.Fatalf("%d px: typed %q, joined as %q", w, typed.name, got)
		}
	}
}

// An outage: after 2 s without the server every page says so in words
// (phones: taps are not being sent; the presenter screen: over the board),
// and once the server is back on the same address every page is live again
// within about 2 s, by itself (no reload), over WebSocket and SSE.
func TestOutageIsShownAndPagesComeBackQuickly(t *testing.T) {
	e := newEnv(t)
	browser := newBrowser(t)
	ws := newPlayer(t, browser, "Ann")
	sse := newPlayer(t, browser, "Bob")
	ws.join(e.base, "/")
	sse.join(e.base, "/?transport=sse")
	screen := newPlayer(t, browser, "screen")
	screen.do(chromedp.EmulateViewport(1280, 720), chromedp.Navigate(e.base+"/screen"))
	ws.asPhone(320, 640)
	sse.asPhone(430, 800)
	pages := []*player{ws, sse, screen}
	for _, p := range pages {
		p.waitConnected(10*time.Second, "live")
		eval[bool](p, `window.e2eSamePage = true`)
	}
	const overlayJS = `(() => { const o = document.getElementById('conn-lost'); return o && !o.hidden && getComputedStyle(o).display !== 'none' ? o.textContent : ''; })()`

	if err := e.m.Close(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	for _, p := range pages {
		testenv.Eventually(t, 5*time.Second, func() string {
			if eval[string](p, overlayJS) == "" {
				return p.name + ": no connection-lost notice"
			}
			return ""
		})
	}
	shown := time.Since(down)
	if got := eval[string](ws, overlayJS); !strings.Contains(got, "not being sent") {
		t.Errorf("phone says %q", got)
	}
	if got := eval[string](screen, overlayJS); !strings.Contains(got, "Connection lost") {
		t.Errorf("screen says %q", got)
	}
	// The notice covers the presenter's board.
	if !eval[bool](screen, `(() => { const r = document.getElementById('conn-lost').getBoundingClientRect(); return r.width >= innerWidth - 1 && r.height >= innerHeight - 1; })()`) {
		t.Error("the screen's notice does not cover the board")
	}
	ws.shot("outage-phone-320")
	sse.shot("outage-phone-430")
	screen.shot("outage-screen-1280")
	time.Sleep(max(0, 6*time.Second-time.Since(down))) // a few seconds of outage: the pages' retries back off

	e.start(e.addr)
	back := time.Now()
	var took []string
	for _, p := range pages {
		for {
			if v := p.view(); v.State == "live" && eval[string](p, overlayJS) == "" {
				break
			}
			if time.Since(back) > 10*time.Second {
				t.Fatalf("%s's page not live within 10 s of the server's return: %+v", p.name, p.view())
			}
			time.Sleep(20 * time.Millisecond)
		}
		d := time.Since(back)
		took = append(took, fmt.Sprintf("%s %v", p.name, d.Round(time.Millisecond)))
		if d > 2500*time.Millisecond {
			t.Errorf("%s's page took %v to come back after the server did", p.name, d.Round(time.Millisecond))
		}
		if !eval[bool](p, `window.e2eSamePage === true`) {
			t.Errorf("%s's page was reloaded", p.name)
		}
	}
	t.Logf("notice shown on every page %v after the server went down; live again after its return: %s", shown.Round(time.Millisecond), strings.Join(took, ", "))
}

// A timed round on three phones (320×640, 375×667, 430×932): during the
// countdown and play the whole tap button is on screen without scrolling
// and the screen is kept awake (Wake Lock); after the bell the lock is
// released and each phone shows its own result ("Red won — you were #2 of
// 3 with 3 taps"); ties share a rank on the board and in "your rank".
func TestRoundOnPhones(t *testing.T) {
	e := newEnv(t)
	browser := newBrowser(t)
	sizes := [][2]int64{{320, 640}, {375, 667}, {430, 932}}
	taps := []int{5, 3, 3}
	var ps []*player
	for i, name := range []string{"Ann", "Bob", "Cy"} {
		p := newPlayer(t, browser, name)
		p.join(e.base, "/")
		p.asPhone(sizes[i][0], sizes[i][1])
		p.waitConnected(10*time.Second, "live")
		ps = append(ps, p)
	}
	sc := e.startRound(2*time.Second, 5*time.Second)
	const buttonJS = `(() => { const r = document.getElementById('tap-button').getBoundingClientRect();
		return {Top: r.top, Bottom: r.bottom, Height: innerHeight, Scroll: scrollY, Wake: document.body.dataset.wakeLock || ''}; })()`
	type buttonView struct {
		Top, Bottom, Height, Scroll float64
		Wake                        string
	}
	for i, p := range ps {
		p.waitRound(1500*time.Millisecond, "countdown", func(v roundView) bool { return v.Disabled && strings.Contains(v.Why, "starts in") })
		b := eval[buttonView](p, buttonJS)
		if b.Top < 0 || b.Bottom > b.Height || b.Scroll != 0 {
			t.Errorf("%dx%d countdown: the tap button spans %.0f..%.0f of %.0f px (scrolled %.0f)", sizes[i][0], sizes[i][1], b.Top, b.Bottom, b.Height, b.Scroll)
		}
		p.shot(fmt.Sprintf("round-countdown-%dx%d", sizes[i][0], sizes[i][1]))
	}
	for i, p := range ps {
		p.waitRound(3*time.Second, "play", func(v roundView) bool { return !v.Disabled })
		b := eval[buttonView](p, buttonJS)
		if b.Top < 0 || b.Bottom > b.Height || b.Scroll != 0 {
			t.Errorf("%dx%d play: the tap button spans %.0f..%.0f of %.0f px (scrolled %.0f)", sizes[i][0], sizes[i][1], b.Top, b.Bottom, b.Height, b.Scroll)
		}
		if b.Wake != "held" {
			t.Errorf("%s during play: wake lock %q, want held", p.name, b.Wake)
		}
		p.tapFast(taps[i])
	}
	ps[0].shot("round-play-320x640")
	for i, p := range ps {
		p.waitRound(time.Until(time.UnixMilli(sc.EndsAt))+10*time.Second, "the winner banner", func(v roundView) bool { return v.Headline != "" })
		var res string
		testenv.Eventually(t, 3*time.Second, func() string {
			res = eval[string](p, `(() => { const r = document.getElementById('my-result'); return r && !r.hidden ? r.textContent : ''; })()`)
			if !strings.Contains(res, fmt.Sprintf("with %d taps", taps[i])) {
				return fmt.Sprintf("%s's result says %q", p.name, res)
			}
			return ""
		})
		rs := e.state().Round
		winner := map[string]string{"blue": "Blue won", "red": "Red won", "tie": "It's a tie"}[*rs.Winner]
		wantRank := map[int]string{0: "#1 of 3", 1: "#2 of 3", 2: "#2 of 3"}[i]
		if !strings.HasPrefix(res, winner) || !strings.Contains(res, "you were "+wantRank) {
			t.Errorf("%s's result %q, want %q … %q", p.name, res, winner, wantRank)
		}
		if w := eval[string](p, `document.body.dataset.wakeLock || ''`); w != "released" {
			t.Errorf("%s after the bell: wake lock %q, want released", p.name, w)
		}
		v := p.view()
		if want := map[int]string{0: "1", 1: "2", 2: "2"}[i]; v.MyRank != want {
			t.Errorf("%s's rank %q, want %q (ties share one)", p.name, v.MyRank, want)
		}
		p.shot(fmt.Sprintf("round-result-%dx%d", sizes[i][0], sizes[i][1]))
		t.Logf("%s: %q", p.name, res)
	}
	ranks := eval[string](ps[0], `[...document.querySelectorAll('#leaderboard .board__rank')].map(e => e.textContent).join(',')`)
	if ranks != "1,2,2" {
		t.Errorf("leaderboard ranks %q, want 1,2,2", ranks)
	}
}

// Round history on phones: linked from the game, leaderboard and join
// pages; the Winner column and both scores show without scrolling sideways
// at 320–430 px; start times are in the viewer's time zone (Tokyo here).
func TestRoundHistoryOnPhones(t *testing.T) {
	e := newPhoneEnv(t, nil)
	var ex store.Export
	if err := json.Unmarshal(e.admin("GET", "/admin/export", nil), &ex); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 5, 9, 30, 0, 0, time.UTC)
	for i := range 3 {
		n := int64(3 - i)
		at := start.Add(time.Duration(n) * 10 * time.Minute).UnixMilli()
		blue, red := 9_999_999-n, 9_876_543+n
		ex.Rounds = append(ex.Rounds, game.RoundResult{Round: n, StartsAt: at, EndsAt: at + 60_000, Blue: blue, Red: red,
			Winner: game.Winner(blue, red), Players: 412, TopTapper: &game.LeaderboardEntry{ID: "p1", Username: "Maximiliana Thunderclap", TapCount: 2_311, Rank: 1}})
	}
	b, _ := json.Marshal(ex)
	e.admin("POST", "/admin/import", b)

	browser := newBrowser(t)
	p := newPlayer(t, browser, "Ann")
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Tokyo"})
		return err
	}))
	p.do(chromedp.Navigate(e.base + "/"))
	if !eval[bool](p, `!!document.querySelector('a[href="/rounds"]')`) {
		t.Error("the join page does not link /rounds")
	}
	p.join(e.base, "/")
	for _, path := range []string{"/", "/leaderboard"} {
		p.do(chromedp.Navigate(e.base + path))
		if !eval[bool](p, `!!document.querySelector('a[href="/rounds"]')`) {
			t.Errorf("%s does not link /rounds", path)
		}
	}
	p.do(chromedp.Navigate(e.base + "/rounds"))
	for _, w := range phoneWidths {
		p.asPhone(w, 700)
		type cell struct {
			Right  float64
			Text   string
			Width  float64
			Scroll float64
		}
		cells := eval[[]cell](p, `[...document.querySelectorAll('.rounds__table tbody tr:first-child > *')].slice(0, 4).map(c => ({Right: c.getBoundingClientRect().right, Text: c.textContent, Width: innerWidth, Scroll: document.querySelector('.rounds__scroll').scrollLeft}))`)
		if len(cells) != 4 {
			t.Fatalf("%d px: first row %+v", w, cells)
		}
		for _, c := range cells {
			if c.Right > c.Width {
				t.Errorf("%d px: %q ends at %.0f, off the %.0f px screen", w, c.Text, c.Right, c.Width)
			}
		}
		if cells[1].Text != "Blue" || cells[2].Text != "9,999,996" {
			t.Errorf("%d px: first row %+v", w, cells)
		}
		p.shot(fmt.Sprintf("rounds-%d", w))
	}
	when := eval[string](p, `document.querySelector('.rounds__table tbody time').textContent`)
	want := eval[string](p, `new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeStyle: 'short'}).format(new Date('2026-12-05T10:00:00Z'))`)
	if when != want || !strings.Contains(when, "7:00") {
		t.Errorf("round 3 started at %q, want %q (19:00 in Tokyo)", when, want)
	}
}

// Every page loads without a missing resource (no 404: favicon included)
// and its static assets come compressed, with immutable content-hashed
// names; it reports the bytes a first visit transfers. Pages and API
// answers come gzipped; a tap's 202 and /theme.css (under a kilobyte) as
// they are.
func TestPagesLoadCompressedWithoutMissingResources(t *testing.T) {
	e := newEnv(t)
	browser := newBrowser(t)
	p := newPlayer(t, browser, "Ann")
	p.join(e.base, "/")
	type res struct {
		URL, Encoding, Cache string
		Status               int
		Size                 int
	}
	const resourcesJS = `performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation')).map(r => ({URL: r.name, Status: r.responseStatus || 0, Size: r.transferSize || 0}))`
	for _, path := range []string{"/", "/leaderboard", "/rounds", "/screen"} {
		p.do(chromedp.Navigate(e.base + path))
		time.Sleep(300 * time.Millisecond)
		total := 0
		for _, r := range eval[[]res](p, resourcesJS) {
			total += r.Size
			if r.Status >= 400 {
				t.Errorf("%s: %s answered %d", path, r.URL, r.Status)
			}
		}
		icon := eval[string](p, `document.querySelector('link[rel="icon"]') ? document.querySelector('link[rel="icon"]').href : ''`)
		if icon == "" {
			t.Errorf("%s: no icon link", path)
		}
		t.Logf("%s: %d bytes over the network (cached assets count 0)", path, total)
	}
	// What the browser asks for without reading the page.
	for _, u := range []string{"/favicon.ico", eval[string](p, `document.querySelector('link[rel="icon"]').href`)} {
		if !strings.HasPrefix(u, "http") {
			u = e.base + u
		}
		r, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "image/svg+xml" {
			t.Errorf("%s: %d %s", u, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	// The page's assets, as a browser asks for them.
	var first int
	for _, sel := range []string{`link[rel="stylesheet"]`, `script[src]`} {
		for _, u := range eval[[]string](p, `[...document.querySelectorAll('`+sel+`')].map(e => e.href || e.src)`) {
			req, _ := http.NewRequest("GET", u, nil)
			req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
			r, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			first += len(b)
			// /theme.css (the host's team colours, a few hundred bytes) is
			// made per request, under the kilobyte worth compressing; it is
			// cached like the files by its hashed URL.
			wantEncoding := "br"
			if !strings.Contains(u, "/static/") {
				wantEncoding = ""
			}
			if r.Header.Get("Content-Encoding") != wantEncoding || r.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
				t.Errorf("%s: Content-Encoding %q, Cache-Control %q", u, r.Header.Get("Content-Encoding"), r.Header.Get("Cache-Control"))
			}
		}
	}
	t.Logf("static assets of a first visit: %d bytes with brotli", first)

	// Pages and API answers go gzipped to a client that takes it; a tap's
	// 202 (small, and its route never compressed) goes as it is.
	for i := range 20 {
		e.apiJoin(fmt.Sprintf("player_%d", i)) // a state over a kilobyte
	}
	get := func(method, path, token string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, e.base+path, strings.NewReader(`{"count":1}`))
		req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd") // set: the transport then leaves the body as sent
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
		}
		r, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r, b
	}
	for _, path := range []string{"/", "/leaderboard", "/rounds", "/screen", "/api/game-state"} {
		r, b := get("GET", path, "")
		if r.StatusCode != http.StatusOK || r.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(r.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("%s: %d, Content-Encoding %q, Vary %q", path, r.StatusCode, r.Header.Get("Content-Encoding"), r.Header.Get("Vary"))
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil || !(strings.HasPrefix(strings.ToLower(string(plain)), "<!doctype html>") || bytes.HasPrefix(plain, []byte("{"))) {
			t.Errorf("%s: gunzipped %.40q, %v", path, plain, err)
		}
		t.Logf("%s: %d bytes gzipped, %d as they are", path, len(b), len(plain))
	}
	token, _ := e.apiJoin("tapper")
	if r, b := get("POST", "/api/tap", token); r.StatusCode != http.StatusAccepted || r.Header.Get("Content-Encoding") != "" {
		t.Errorf("a tap: %d, Content-Encoding %q (%d bytes)", r.StatusCode, r.Header.Get("Content-Encoding"), len(b))
	}
}

// Tapping faster than the limit on a 320 px phone: the page says so in a
// player's words (no setting's name) and nothing on the page moves.
func TestTooFastMessageIsPlainAndStill(t *testing.T) {
	e := newEnvWith(t, map[string]string{"TAP_RATE_LIMIT": "2"}) // bursts of 50
	browser := newBrowser(t)
	ann := newPlayer(t, browser, "Ann")
	ann.join(e.base, "/")
	ann.asPhone(320, 640)
	ann.waitConnected(10*time.Second, "live")
	const layoutJS = `(() => { const r = e => document.querySelector(e).getBoundingClientRect().top + scrollY;
		return {Stats: r('.mystats'), Board: r('.board'), Message: document.getElementById('tap-error').textContent}; })()`
	type layout struct {
		Stats, Board float64
		Message      string
	}
	before := eval[layout](ann, layoutJS)
	var during layout
	for range 40 {
		ann.tapFast(5)
		if during = eval[layout](ann, layoutJS); during.Message != "" && strings.Contains(during.Message, "fast") {
			break
		}
	}
	if !strings.Contains(during.Message, "Too fast") || strings.Contains(during.Message, "TAP_RATE_LIMIT") || strings.Contains(during.Message, "per second") {
		t.Fatalf("the page says %q", during.Message)
	}
	ann.shot("too-fast-320")
	if during.Stats != before.Stats || during.Board != before.Board {
		t.Errorf("the message moved the page: stats %v -> %v, board %v -> %v", before.Stats, during.Stats, before.Board, during.Board)
	}
	t.Logf("the page says %q", during.Message)
}

// The result of a round with 7-digit scores, as the game page renders it
// (views.GamePage with the app's own CSS and JS, served without the rest of
// the app, since a real round cannot reach ten million taps in a test): the
// winner banner's "▲ Blue 9,999,999 – Red 9,876,543 ●" pills, the clock
// and the personal result fit at every phone width, with the game's own
// team names and with a host's 16-character ones.
func TestFinalScoresFitOnPhones(t *testing.T) {
	winner := "blue"
	now := time.Now().UnixMilli()
	d := views.PageData{
		Me:   game.User{ID: "0123456789abcdef", Username: "Annabelle Longname", Team: game.Red, TapCount: 1_234_567},
		Rank: 35, RankOf: 412, Transport: "sse",
		State: game.Snapshot{
			GameState: game.State{BlueScore: 9_999_999, RedScore: 9_876_543, TotalTaps: 19_876_542, BlueOnline: 206, RedOnline: 206},
			Round: game.RoundState{Number: 12, Mode: game.ModeTimed, Status: "over", StartsAt: now - 70_000, EndsAt: now - 10_000,
				Winner: &winner, Final: true, Blue: 9_999_999, Red: 9_876_543,
				TopTapper: &game.LeaderboardEntry{ID: "x", Username: "Maximiliana Thunderclap", TapCount: 1_999_999, Rank: 1}},
		},
	}
	mux := http.NewServeMux()
	mux.Handle("/static/", static.Handler())
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) { // a quiet stream: no updates
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	teams := game.DefaultTeams()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = views.GamePage(d).Render(views.WithTeams(r.Context(), teams), w)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	browser := newBrowser(t)
	p := newPlayer(t, browser, "Annabelle")
	// The game's own team names, then a host's of the longest length.
	host := game.Teams{Blue: game.TeamStyle{Name: "Clever Cats Club", Color: "#6d28d9"}, Red: game.TeamStyle{Name: "Dogs of Thunder", Color: "#0f766e"}}
	for pass, ts := range []game.Teams{teams, host} {
		teams = ts
		for _, w := range phoneWidths {
			p.asPhone(w, 800)
			p.do(chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(".round__winner")))
			testenv.Eventually(t, 3*time.Second, func() string {
				if r, want := eval[string](p, `document.getElementById('my-result').textContent`), ts.Blue.Name+" won — you were #35 of 412 with 1,234,567 taps"; r != want {
					return fmt.Sprintf("personal result %q", r)
				}
				return ""
			})
			if bad := eval[[]string](p, numberLayoutJS); len(bad) > 0 {
				t.Errorf("%d px: %s", w, strings.Join(bad, "; "))
			}
			// Each pill on one line, inside the banner.
			type pill struct {
				Lines             int
				Left, Right, BoxL float64
				BoxR              float64
				Text              string
			}
			for _, pl := range eval[[]pill](p, `[...document.querySelectorAll('.round__team')].map(e => { const r = e.getBoundingClientRect(), b = e.closest('.round__winner').getBoundingClientRect();
			return {Lines: Math.round(r.height / parseFloat(getComputedStyle(e).lineHeight || 20)), Left: r.left, Right: r.right, BoxL: b.left, BoxR: b.right, Text: e.textContent}; })`) {
				if pl.Right > pl.BoxR+0.5 || pl.Left < pl.BoxL-0.5 || pl.Lines > 1 {
					t.Errorf("%d px: pill %q spans %.0f..%.0f in a banner %.0f..%.0f (%d lines)", w, pl.Text, pl.Left, pl.Right, pl.BoxL, pl.BoxR, pl.Lines)
				}
				if !strings.Contains(pl.Text, "9,") {
					t.Errorf("%d px: pill %q has no separators", w, pl.Text)
				}
			}
			if pass == 0 {
				p.shot(fmt.Sprintf("final-%d", w))
			} else {
				p.shot(fmt.Sprintf("final-teams-%d", w))
			}
		}
	}
}

// Your own count moves at once: with every tap's answer held 500 ms (a slow
// mobile network), a tap shows on the tapper's page well before its answer
// comes back, at each phone width; and it never shows more than were made.
func TestOwnCountMovesAtOnce(t *testing.T) {
	e := newEnv(t)
	e.proxy(proxyOptions{TapDelay: 500 * time.Millisecond})
	browser := newBrowser(t)
	ann := newPlayer(t, browser, "Ann")
	ann.join(e.base, "/?transport=sse") // taps go by POST, through the slow proxy
	ann.waitConnected(10*time.Second, "live")
	watchMyTaps(ann)
	time.Sleep(1500 * time.Millisecond) // the page's token bucket fills a little (it starts empty)
	// In the page: the time from the finger going down to #my-taps changing.
	eval[bool](ann, `(() => { window.e2eDown = 0; window.e2eMoved = -1;
		document.getElementById('tap-button').addEventListener('pointerdown', () => { window.e2eDown = performance.now(); window.e2eMoved = -1; }, {capture: true});
		new MutationObserver(() => { if (window.e2eDown && window.e2eMoved < 0) window.e2eMoved = performance.now() - window.e2eDown; })
			.observe(document.querySelector('.mystats'), {subtree: true, childList: true, characterData: true});
		return true; })()`)
	for i, w := range phoneWidths {
		ann.asPhone(w, 700)
		ann.tap(1)
		want := fmt.Sprint(i + 1)
		ann.waitView(2*time.Second, "my taps "+want, func(v view) bool { return v.MyTaps == want })
		took := time.Duration(eval[float64](ann, `window.e2eMoved`) * float64(time.Millisecond))
		if took < 0 || took > 50*time.Millisecond {
			t.Errorf("%d px: own count moved %v after the finger went down (the tap's answer takes 500 ms)", w, took.Round(time.Millisecond))
		}
		t.Logf("%d px: own count moved %v after the finger went down", w, took.Round(100*time.Microsecond))
		time.Sleep(600 * time.Millisecond) // the answer
	}
	if max := eval[int](ann, `window.e2eMax`); max != len(phoneWidths) {
		t.Fatalf("own count showed up to %d for %d taps", max, len(phoneWidths))
	}
}
