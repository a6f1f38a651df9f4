package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tapwars/tapwars/internal/testenv"
)

// liveWithin is how soon another player's page must show a tap.
const liveWithin = time.Second

// twoPlayers has Ann and Bob join through the form on path, and checks that
// both pages are connected in one of states and on different teams.
func twoPlayers(t *testing.T, e *env, browser context.Context, path string, states ...string) (ann, bob *player) {
	t.Helper()
	ann = newPlayer(t, browser, "Ann")
	bob = newPlayer(t, browser, "Maximiliana Thunderclap") // a long name: the layout must cope
	ann.join(e.base, path)
	bob.join(e.base, path)
	ann.waitConnected(10*time.Second, states...)
	bob.waitConnected(10*time.Second, states...)
	if ann.team == bob.team {
		t.Fatalf("two players on team %s: teams are not balanced", ann.team)
	}
	return ann, bob
}

// tapsShowEverywhere: tapper taps n times (button clicks); within a second the
// other page shows the new total, the tapper's team score and the tapper's
// leaderboard row, and the tapper's page shows its own count.
func tapsShowEverywhere(t *testing.T, tapper, other *player, n int, before int64) {
	t.Helper()
	mine := int64(0)
	if v := tapper.view(); v.MyTaps != "" {
		fmt.Sscan(v.MyTaps, &mine)
	}
	tapper.tap(n)
	tapped := time.Now()
	wantTotal := fmt.Sprint(before + int64(n))
	wantMine := int(mine) + n
	other.waitView(liveWithin, fmt.Sprintf("total %s and %s's %d taps", wantTotal, tapper.name, wantMine), func(v view) bool {
		return v.Total == wantTotal && v.row(tapper) == wantMine
	})
	took := time.Since(tapped)
	v := other.view()
	var teamScore int64
	fmt.Sscan(v.score(tapper.team), &teamScore)
	if teamScore < int64(wantMine) {
		t.Fatalf("%s's page shows team %s at %s, below %s's own %d taps", other.name, tapper.team, v.score(tapper.team), tapper.name, wantMine)
	}
	tapper.waitView(liveWithin, fmt.Sprintf("my taps %d and total %s", wantMine, wantTotal), func(v view) bool {
		return v.MyTaps == fmt.Sprint(wantMine) && v.Total == wantTotal
	})
	t.Logf("%s tapped %d: %s's page showed it %v after the last click", tapper.name, n, other.name, took.Round(time.Millisecond))
}

// The default page: live over WebSocket. Two players; Ann taps 10 times and
// Bob's page shows the total, Ann's team score and Ann on the leaderboard
// within a second; Ann's page shows her 10 taps. Screenshots at 375 and
// 1280 px.
func TestLiveOverWebSocket(t *testing.T) {
	e := newEnv(t)
	browser := newBrowser(t)
	ann, bob := twoPlayers(t, e, browser, "/", "live")
	e.liveCount(map[string]int{"ws": 2, "sse": 0})
	if v := ann.view(); v.Status != "live" {
		t.Fatalf("status %q", v.Status)
	}

	tapsShowEverywhere(t, ann, bob, 10, 0)
	v := bob.view()
	if v.score(ann.team) != "10" || v.score(bob.team) != "0" {
		t.Fatalf("Bob's page: blue %s red %s, want Ann's team %s at 10", v.Blue, v.Red, ann.team)
	}
	if a := ann.view(); a.MyRank != "1" || a.score(ann.team) != "10" {
		t.Fatalf("Ann's page: %+v", a)
	}

	// Bob answers with 3: Ann's page follows too, and the board is ordered.
	tapsShowEverywhere(t, bob, ann, 3, 10)
	ann.waitView(liveWithin, "Ann first, Bob second", func(v view) bool {
		return len(v.Board) == 2 && v.Board[0].ID == ann.id && v.Board[1].ID == bob.id && v.Board[1].Taps == 3
	})
	bob.waitView(liveWithin, "Bob ranked 2", func(v view) bool { return v.MyRank == "2" && v.MyTaps == "3" })

	// A few more players on the board for the screenshots.
	e.apiTaps("Zoë", 7)
	e.apiTaps("speedy_gonzales.42", 12)
	ann.waitView(3*time.Second, "total 32", func(v view) bool { return v.Total == "32" })
	ann.screenshot("game-1280", 1280, 900, false)
	ann.screenshot("game-375", 375, 812, true)
	bob.screenshot("game-375-other-team", 375, 812, true)
	// The /leaderboard page is live too.
	ann.do(chromedp.Navigate(e.base+"/leaderboard"), chromedp.WaitVisible(chromedp.CSS("#leaderboard-full")))
	ann.waitConnected(10*time.Second, "live")
	bob.tap(1)
	ann.waitView(liveWithin, "Bob's 4 taps and total 33 on /leaderboard", func(v view) bool {
		return v.row(bob) == 4 && v.Total == "33" && v.MyTaps == "10" && len(v.Board) == 4
	})
	ann.screenshot("leaderboard-1280", 1280, 900, false)
	visitor := newPlayer(t, browser, "visitor")
	visitor.do(chromedp.Navigate(e.base+"/"), chromedp.WaitVisible(chromedp.CSS("#username")))
	visitor.screenshot("join-375", 375, 812, true)
}

// ?transport=sse forces Server-Sent Events; the game works the same.
func TestLiveOverForcedSSE(t *testing.T) {
	e := newEnv(t)
	browser := newBrowser(t)
	ann, bob := twoPlayers(t, e, browser, "/?transport=sse", "live")
	e.liveCount(map[string]int{"ws": 0, "sse": 2})
	if v := ann.view(); v.Status != "live (SSE)" {
		t.Fatalf("status %q, want live (SSE)", v.Status)
	}
	tapsShowEverywhere(t, ann, bob, 10, 0)
	tapsShowEverywhere(t, bob, ann, 4, 10)
	if v := bob.view(); v.score(ann.team) != "10" || v.score(bob.team) != "4" {
		t.Fatalf("Bob's page %+v", v)
	}
}

// A WebSocket the server side refuses (a proxy answering 403 to /ws): the
// page falls back to SSE by itself and stays live.
func TestRefusedWebSocketFallsBackToSSE(t *testing.T) {
	e := newEnv(t)
	refused := e.proxy(proxyOptions{RefuseWS: true})
	browser := newBrowser(t)
	start := time.Now()
	ann, bob := twoPlayers(t, e, browser, "/", "fallback")
	t.Logf("both pages fell back to SSE within %v of the first page load", time.Since(start).Round(time.Millisecond))
	if v := ann.view(); v.Status != "fallback (SSE)" {
		t.Fatalf("status %q", v.Status)
	}
	if refused.Load() < 2 {
		t.Fatalf("the proxy refused %d WebSocket requests; the pages never tried", refused.Load())
	}
	e.liveCount(map[string]int{"ws": 0, "sse": 2})
	tapsShowEverywhere(t, ann, bob, 10, 0)
	tapsShowEverywhere(t, bob, ann, 2, 10)
	// Falling back is not an outage: no connection-lost notice was shown.
	for _, p := range []*player{ann, bob} {
		if eval[bool](p, `!!document.getElementById('conn-lost')`) {
			t.Errorf("%s's page showed the connection-lost notice while falling back", p.name)
		}
	}
	bob.screenshot("game-375-fallback", 375, 812, true)
}

// After the server restarts (same address, same Redis and Kafka), both pages,
// one on WebSocket and one on SSE, reconnect by themselves, without a
// reload, and show the right numbers.
func TestPagesReconnectAfterServerRestart(t *testing.T) {
	e := newEnv(t)
	browser := newBrowser(t)
	ann := newPlayer(t, browser, "Ann")
	bob := newPlayer(t, browser, "Bob")
	ann.join(e.base, "/")
	bob.join(e.base, "/?transport=sse")
	ann.waitConnected(10*time.Second, "live")
	bob.waitConnected(10*time.Second, "live")
	e.liveCount(map[string]int{"ws": 1, "sse": 1})
	tapsShowEverywhere(t, ann, bob, 10, 0)
	for _, p := range []*player{ann, bob} {
		eval[bool](p, `window.e2eSamePage = true`)
	}

	e.restart()
	// Taps while the pages are still reconnecting must show up too.
	carl := e.apiTaps("Carl", 7)
	start := time.Now()
	for _, p := range []*player{ann, bob} {
		p.waitView(15*time.Second, "reconnected with total 17", func(v view) bool {
			return (v.State == "live" || v.State == "fallback") && v.Total == "17" && v.row(ann) == 10
		})
		if !eval[bool](p, `window.e2eSamePage === true`) {
			t.Fatalf("%s's page was reloaded", p.name)
		}
	}
	t.Logf("both pages live again with the right numbers %v after the new instance started", time.Since(start).Round(time.Millisecond))
	// Ann's page may have fallen back to SSE if the restart took long (three
	// failed sockets in a row); either way both pages are connected again.
	testenv.Eventually(t, 10*time.Second, func() string {
		if c := e.m.Hub.Count(); c["ws"]+c["sse"] != 2 || c["sse"] < 1 {
			return fmt.Sprintf("live clients after the restart %v", c)
		}
		return ""
	})
	t.Logf("after the restart: %v; Ann's page says %q", e.m.Hub.Count(), ann.view().Status)
	want := map[string]int{"blue": 0, "red": 0}
	want[ann.team] += 10
	want[string(carl)] += 7
	if v := ann.view(); v.MyTaps != "10" || v.MyRank != "1" || v.Blue != fmt.Sprint(want["blue"]) || v.Red != fmt.Sprint(want["red"]) {
		t.Fatalf("Ann after restart: %+v, want scores %v", v, want)
	}
	// And the game goes on over the new connections.
	tapsShowEverywhere(t, ann, bob, 5, 17)
	tapsShowEverywhere(t, bob, ann, 3, 22)
}

// Fast tapping loses nothing and counts nothing twice: 30 clicks as fast as
// the browser takes them are all counted, once, over WebSocket and over SSE;
// the tapper's own count never shows more taps than were made.
func TestFastTappingLosesNothing(t *testing.T) {
	e := newEnv(t)
	browser := newBrowser(t)
	ann, bob := twoPlayers(t, e, browser, "/", "live")
	total := 0
	for _, path := range []string{"/", "/?transport=sse"} {
		if path != "/" {
			for _, p := range []*player{ann, bob} {
				p.do(chromedp.Navigate(e.base + path))
				p.waitConnected(10*time.Second, "live")
			}
			e.liveCount(map[string]int{"ws": 0, "sse": 2})
		}
		watchMyTaps(ann)
		start := time.Now()
		ann.tapFast(30)
		clicked := time.Since(start)
		total += 30
		want := fmt.Sprint(total)
		ann.waitView(5*time.Second, "my taps "+want, func(v view) bool { return v.MyTaps == want })
		bob.waitView(5*time.Second, "total "+want, func(v view) bool { return v.Total == want && v.row(ann) == total })
		t.Logf("%s: 30 clicks in %v; all counted %v after the first", path, clicked.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		time.Sleep(300 * time.Millisecond)
		if s := e.state(); s.GameState.TotalTaps != int64(total) || s.Leaderboard[0].TapCount != int64(total) {
			t.Fatalf("server counted %+v", s.GameState)
		}
		if v := ann.view(); v.MyTaps != want || v.Total != want {
			t.Fatalf("Ann's page settled on %+v", v)
		}
		if max := eval[int](ann, `window.e2eMax`); max != total {
			t.Fatalf("Ann's own count showed up to %d for %d taps", max, total)
		}
	}
}

// Taps whose answers arrive late (after the live update that counts them)
// are not counted twice on the tapper's page: #my-taps never shows more taps
// than were made, over WebSocket and over SSE.
func TestSlowTapAnswersDoNotInflateOwnCount(t *testing.T) {
	e := newEnv(t)
	e.proxy(proxyOptions{TapDelay: 300 * time.Millisecond})
	browser := newBrowser(t)
	for _, path := range []string{"/", "/?transport=sse"} {
		ann := newPlayer(t, browser, "Ann "+map[string]string{"/": "ws", "/?transport=sse": "sse"}[path])
		ann.join(e.base, path)
		ann.waitConnected(10*time.Second, "live")
		watchMyTaps(ann)
		ann.tap(5)
		ann.waitView(5*time.Second, "my taps 5", func(v view) bool { return v.MyTaps == "5" && v.row(ann) == 5 })
		time.Sleep(400 * time.Millisecond) // the last answer arrives
		if v := ann.view(); v.MyTaps != "5" {
			t.Fatalf("%s: own count settled on %s for 5 taps", path, v.MyTaps)
		}
		if max := eval[int](ann, `window.e2eMax`); max != 5 {
			t.Fatalf("%s: own count showed up to %d for 5 taps", path, max)
		}
	}
}

// watchMyTaps records in window.e2eMax the highest number #my-taps ever
// shows (live updates replace the element, so it watches its parent).
func watchMyTaps(p *player) {
	p.t.Helper()
	eval[bool](p, `(() => { window.e2eMax = 0; new MutationObserver(() => {
		const n = parseInt(document.getElementById('my-taps').textContent, 10);
		if (n > window.e2eMax) window.e2eMax = n;
	}).observe(document.querySelector('.mystats'), {subtree: true, childList: true, characterData: true}); return true; })()`)
}

// curl -N /events: the HTML stream's every data: line is one line of HTML
// (the SSE format ends a field at a newline), events end with a blank line,
// and the stream reaches the current state (the first event is the newest
// frame the hub has, at most one frame interval old).
func TestSSEDataLinesAreSingleLines(t *testing.T) {
	e := newEnv(t)
	for i, name := range []string{"Ann", "Bob", "Zoë", "x.y_z-1"} {
		e.apiTaps(name, 3+i)
	}
	testenv.Eventually(t, 5*time.Second, func() string {
		if s := e.state(); s.GameState.TotalTaps != 18 {
			return fmt.Sprintf("total %d", s.GameState.TotalTaps)
		}
		return ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.m.URL()+"/events", nil)
	// As a browser asks: set by hand, the transport does not decompress,
	// so a compressed stream would show in Content-Encoding.
	req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("X-Accel-Buffering") != "no" || res.Header.Get("Content-Encoding") != "" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("headers %v", res.Header)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	states := 0
	var last, board string
	total18 := false
	// current reports whether the stream has reached the current state: total
	// 18 and a board with every player, each name as written. The taps are
	// on several partitions, so an older frame may show some players'
	// taps and not yet others'.
	current := func() bool {
		if !total18 {
			return false
		}
		for _, want := range []string{">Ann<", ">Bob<", ">Zoë<", ">x.y_z-1<"} {
			if !strings.Contains(board, want) {
				return false
			}
		}
		return true
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "", strings.HasPrefix(line, "retry: "), strings.HasPrefix(line, "event: "), strings.HasPrefix(line, ": "):
		case strings.HasPrefix(line, "data: <"):
			// A frame after the first may carry only what changed: the
			// total and a held-back leaderboard can come in separate events.
			if strings.Contains(line, `id="total-taps"`) {
				total18 = strings.Contains(line, `id="total-taps" data-n="18" class="num num--w2" hx-swap-oob="true">18<`)
			}
			if strings.Contains(line, `id="leaderboard"`) {
				states++
				last, board = line, line
			} // else a personal or status update
			if current() {
				t.Logf("current state by state event %d", states)
				return
			}
		default:
			t.Fatalf("a line that is no SSE field: %q", line)
		}
	}
	t.Fatalf("no state event with total 18 and every player in 3 s (%d state events, the last: %s): %v", states, last, sc.Err())
}

// The CSP watcher that every browser test relies on does see violations:
// a page with an inline script and an inline style under the game's policy.
func TestCSPViolationsAreSeen(t *testing.T) {
	browser := newBrowser(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'")
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><p style="color:red">x</p><script>document.title = "ran"</script>`)
	}))
	defer srv.Close()
	listen, seen := cspListener()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext(), chromedp.WithListener(listen))
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() string {
		if n := len(seen()); n < 2 {
			return fmt.Sprintf("%d violations seen: %q", n, seen())
		}
		return ""
	})
}
