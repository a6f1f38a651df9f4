package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tapwars/tapwars/internal/testenv"
)

// socketTaps is what the page sent over its WebSocket and what the server
// acknowledged there (recorded by watchSocket).
type socketTaps struct {
	Messages int // tap messages sent
	Taps     int // taps they carried
	Largest  int // taps in the largest message
	Acked    int // taps the server acknowledged (#tap-ack)
	Answered int // tap messages answered (#tap-ack or #tap-error)
	TooFast  int // tap messages the server refused with 429 (#tap-error)
}

// watchSocket records, in window.e2eWS, the tap messages the page sends over
// its WebSocket and the acknowledgements it gets, and keeps the socket (to
// kill it). WebSocket.prototype.send is looked up at each call, so the
// page's open socket is watched too. window.e2eWS.log keeps what each
// socket sent and got of taps, for a failing test to print (socketLog).
func watchSocket(p *player) {
	p.t.Helper()
	eval[bool](p, `(() => {
		window.e2eWS = {Messages: 0, Taps: 0, Largest: 0, Acked: 0, Answered: 0, TooFast: 0, socket: null, sockets: 0, log: []};
		const send = WebSocket.prototype.send;
		WebSocket.prototype.send = function (data) {
			const w = window.e2eWS;
			if (w.socket !== this) {
				w.socket = this;
				const n = ++w.sockets;
				w.log.push('socket ' + n);
				this.addEventListener('message', (ev) => {
					for (const m of ev.data.matchAll(/id="tap-ack"[^>]*data-seq="([^"]*)"[^>]*data-count="(\d+)"/g)) {
						w.Acked += parseInt(m[2], 10);
						w.Answered++;
						w.log.push(n + ' ack ' + m[1] + ' ' + m[2]);
					}
					for (const m of ev.data.matchAll(/id="tap-error"[^>]*data-seq="([^"]*)"[^>]*data-status="(\d+)"/g)) {
						if (m[2] === '429') w.TooFast++;
						w.Answered++;
						w.log.push(n + ' refused ' + m[1] + ' ' + m[2]);
					}
					for (const m of ev.data.matchAll(/id="my-taps"[^>]*data-applied="(\d+)"/g)) w.log.push(n + ' applied ' + m[1]);
				});
				this.addEventListener('close', (ev) => w.log.push(n + ' closed ' + ev.code));
			}
			const m = JSON.parse(data);
			w.Messages++;
			w.Taps += m.count;
			w.Largest = Math.max(w.Largest, m.count);
			w.log.push(w.sockets + ' send ' + m.seq + ' ' + m.count);
			return send.call(this, data);
		};
		return true;
	})()`)
}

// watchedPlayer is Ann on the game page over her WebSocket, in a browser of
// her own, with her socket and her own count watched.
func watchedPlayer(t *testing.T, e *env) *player {
	t.Helper()
	ann := newPlayer(t, newBrowser(t), "Ann")
	ann.join(e.base, "/")
	ann.waitConnected(10*time.Second, "live")
	e.liveCount(map[string]int{"ws": 1})
	watchSocket(ann)
	watchMyTaps(ann)
	return ann
}

// socketLog is what watchSocket saw, one event a line.
func socketLog(p *player) string {
	p.t.Helper()
	return strings.Join(eval[[]string](p, `window.e2eWS.log`), "\n")
}

func sentOverSocket(p *player) socketTaps {
	p.t.Helper()
	return eval[socketTaps](p, `(({Messages, Taps, Largest, Acked, Answered, TooFast}) => ({Messages, Taps, Largest, Acked, Answered, TooFast}))(window.e2eWS)`)
}

// postedTaps is the number of POST /api/tap requests the instance answered.
func postedTaps(e *env) int {
	e.t.Helper()
	res, err := http.Get(e.m.MetricsURL() + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "tapwars_http_requests_total{") && strings.Contains(line, `route="/api/tap"`) {
			f, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			n += int(f)
		}
	}
	return n
}

// While the page's WebSocket is open, taps go over it, several to a
// message: 30 fast clicks are all counted, once, without a single POST;
// on forced SSE the same 30 clicks go as POSTs, several taps to a request.
func TestTapsGoOverTheWebSocket(t *testing.T) {
	// tapFast clicks ~200 times a second, ten times a person: 60 such taps
	// in a few seconds are over TAP_RATE_LIMIT's burst (its own test is
	// TestRateLimitedPageBacksOff).
	e := newEnvWith(t, map[string]string{"TAP_RATE_LIMIT": "0"})
	browser := newBrowser(t)
	ann, bob := twoPlayers(t, e, browser, "/", "live")
	e.liveCount(map[string]int{"ws": 2})
	watchSocket(ann)
	watchMyTaps(ann)
	posts := postedTaps(e)
	start := time.Now()
	ann.tapFast(30)
	ann.waitView(5*time.Second, "my taps 30", func(v view) bool { return v.MyTaps == "30" })
	bob.waitView(5*time.Second, "total 30", func(v view) bool { return v.Total == "30" && v.row(ann) == 30 })
	t.Logf("30 clicks counted everywhere %v after the first", time.Since(start).Round(time.Millisecond))
	sent := sentOverSocket(ann)
	if sent.Taps != 30 || sent.Acked != 30 || sent.Messages >= 30 || sent.Messages < 1 {
		t.Fatalf("over the socket: %+v, want 30 taps in fewer messages, all acknowledged", sent)
	}
	if n := postedTaps(e) - posts; n != 0 {
		t.Fatalf("%d POST /api/tap while the socket was open", n)
	}
	t.Logf("30 taps went as %d messages", sent.Messages)
	if s := e.state(); s.GameState.TotalTaps != 30 {
		t.Fatalf("server counted %+v", s.GameState)
	}
	if max := eval[int](ann, `window.e2eMax`); max != 30 {
		t.Fatalf("Ann's own count showed up to %d for 30 taps", max)
	}

	// Forced SSE: no socket, so the clicks go by POST.
	ann.do(chromedp.Navigate(e.base + "/?transport=sse"))
	ann.waitConnected(10*time.Second, "live")
	watchMyTaps(ann)
	posts = postedTaps(e)
	ann.tapFast(30)
	ann.waitView(5*time.Second, "my taps 60", func(v view) bool { return v.MyTaps == "60" })
	bob.waitView(5*time.Second, "total 60", func(v view) bool { return v.Total == "60" })
	n := postedTaps(e) - posts
	t.Logf("30 taps went as %d POSTs", n)
	if n < 1 || n >= 30 {
		t.Fatalf("%d POST /api/tap on SSE for 30 clicks, want fewer than 30", n)
	}
	if max := eval[int](ann, `window.e2eMax`); max != 60 {
		t.Fatalf("Ann's own count showed up to %d for 60 taps", max)
	}
}

// The socket dies in the middle of a burst: taps it acknowledged are
// counted, nothing is counted twice (taps sent without an answer are not
// sent again), taps after it go by POST or the new socket, and the page's
// own count ends on the server's, never above it.
func TestSocketKilledMidBurstLosesNothingAcknowledged(t *testing.T) {
	e := newEnv(t)
	ann := watchedPlayer(t, e)
	ann.tapFast(15)
	// Kill it as soon as the first message is on its way (its answer may
	// or may not have come back).
	testenv.Eventually(t, 5*time.Second, func() string {
		if !eval[bool](ann, `!!window.e2eWS.socket`) {
			return "no tap message sent yet"
		}
		return ""
	})
	eval[bool](ann, `(() => { window.e2eWS.socket.close(); return true; })()`)
	killed := sentOverSocket(ann)
	ann.tapFast(15)
	// The page learns what counted from the live stream: wait for the new
	// socket (the page waits at least 1 s before it reconnects), then for
	// the page and the server to agree.
	ann.waitConnected(5*time.Second, "reconnecting")
	ann.waitConnected(15*time.Second, "live")
	var total int64
	ann.waitView(10*time.Second, "the server's count", func(v view) bool {
		total = e.state().GameState.TotalTaps
		return v.MyTaps == fmt.Sprint(total) && total >= 15
	})
	time.Sleep(500 * time.Millisecond) // anything late shows now
	total = e.state().GameState.TotalTaps
	after := sentOverSocket(ann)
	t.Logf("killed after %+v; at the end %+v; server counted %d of 30", killed, after, total)
	if total > 30 {
		t.Fatalf("server counted %d taps for 30 clicks:\n%s", total, socketLog(ann))
	}
	if total < int64(after.Acked) {
		t.Fatalf("server counted %d, but acknowledged %d over the socket:\n%s", total, after.Acked, socketLog(ann))
	}
	// Every click after the kill was sent one way or the other and
	// acknowledged: at most the taps in flight at the kill may be missing.
	if inFlight := killed.Taps - killed.Acked; total < int64(30-inFlight) && total < 30 {
		t.Fatalf("server counted %d; only %d taps were in flight when the socket died", total, inFlight)
	}
	if v := ann.view(); v.MyTaps != fmt.Sprint(total) {
		t.Fatalf("Ann's page settled on %s, server %d", v.MyTaps, total)
	}
	if max := eval[int](ann, `window.e2eMax`); int64(max) > total {
		t.Fatalf("Ann's own count showed %d, server counted %d", max, total)
	}
}

// A player faster than TAP_RATE_LIMIT: once the server answers 429, the
// page stops sending for the Retry-After it gave and says why, instead of
// sending on until the server closes the socket for its refusals (1008
// after ~10 in a row). The socket stays open, and the page's own count is
// what the server counted.
func TestRateLimitedPageBacksOff(t *testing.T) {
	e := newEnvWith(t, map[string]string{"TAP_RATE_LIMIT": "2"}) // bursts of 50
	ann := watchedPlayer(t, e)
	sawMessage := false
	for range 40 { // 160 clicks in about 4 s: far over the burst of 50
		ann.tapFast(4)
		if strings.Contains(eval[string](ann, `document.getElementById('tap-error').textContent`), "try again") {
			sawMessage = true
		}
		time.Sleep(60 * time.Millisecond)
	}
	// The last clicks wait for the batch window (75 ms), then their message
	// for its answer: compare only once every message sent is answered and
	// no new one went out for longer than the window, or an answer still on
	// its way is missing from the server's count.
	sentAt, lastSent := time.Now(), -1
	testenv.Eventually(t, 10*time.Second, func() string {
		s := sentOverSocket(ann)
		if s.Messages != lastSent {
			sentAt, lastSent = time.Now(), s.Messages
		}
		switch {
		case s.Answered != s.Messages:
			return fmt.Sprintf("%d of %d tap messages answered", s.Answered, s.Messages)
		case time.Since(sentAt) < 300*time.Millisecond:
			return "a message went out just now"
		}
		return ""
	})
	var total int64
	ann.waitView(10*time.Second, "the server's count", func(v view) bool {
		total = e.state().GameState.TotalTaps
		return v.MyTaps == fmt.Sprint(total)
	})
	sent := sentOverSocket(ann)
	t.Logf("160 clicks: %+v; the server counted %d", sent, total)
	// A message is counted whole or refused whole: the one that met the
	// end of the burst may have been refused with room left for part of it.
	if total < int64(50-sent.Largest+1) || total >= 160 {
		t.Fatalf("server counted %d of 160 taps at 2/s with bursts of 50 (messages of up to %d taps)", total, sent.Largest)
	}
	if !sawMessage {
		t.Error("the page never said the taps were too fast")
	}
	if sent.TooFast == 0 || sent.TooFast > 6 {
		t.Errorf("%d tap messages refused with 429: the page should stop after the first ones", sent.TooFast)
	}
	if !eval[bool](ann, `window.e2eWS.socket.readyState === WebSocket.OPEN`) {
		t.Fatal("the page's socket was closed")
	}
	e.liveCount(map[string]int{"ws": 1})
	if int64(sent.Acked) != total {
		t.Fatalf("the server acknowledged %d taps and counted %d:\n%s", sent.Acked, total, socketLog(ann))
	}
	if max := eval[int](ann, `window.e2eMax`); int64(max) > total {
		t.Fatalf("Ann's own count showed %d, the server counted %d:\n%s", max, total, socketLog(ann))
	}
}

// The socket drops on a slow network and the player taps on: the taps go by
// POST while it is down and over the new socket once it is back, and every
// one of them is counted. (With htmx's request queue on the button, taps
// queued behind slow POSTs were stranded when the socket came back.)
func TestTapsWhileTheSocketComesBackAllCount(t *testing.T) {
	e := newEnv(t)
	e.proxy(proxyOptions{TapDelay: 400 * time.Millisecond})
	ann := watchedPlayer(t, e)
	ann.tap(1) // the watcher learns the page's socket
	ann.waitView(5*time.Second, "my taps 1", func(v view) bool { return v.MyTaps == "1" })
	// The count shows a tap at once (optimistic); wait for it to be sent.
	testenv.Eventually(t, 5*time.Second, func() string {
		if !eval[bool](ann, `!!window.e2eWS.socket`) {
			return "no tap message sent yet"
		}
		return ""
	})
	eval[bool](ann, `(() => { window.e2eWS.socket.close(); return true; })()`)
	clicks := 1
	// About 4 s of taps, 8 a second: the page reconnects within 1-2 s.
	for range 32 {
		ann.tap(1)
		clicks++
		time.Sleep(125 * time.Millisecond)
	}
	want := fmt.Sprint(clicks)
	ann.waitView(10*time.Second, "my taps "+want, func(v view) bool { return v.MyTaps == want })
	time.Sleep(500 * time.Millisecond) // anything late shows now
	sent := sentOverSocket(ann)
	if total := e.state().GameState.TotalTaps; total != int64(clicks) {
		t.Fatalf("server counted %d of %d clicks (over the sockets: %+v)", total, clicks, sent)
	}
	if sent.Messages < 2 {
		t.Fatalf("the page did not tap over its new socket: %+v", sent)
	}
	t.Logf("%d clicks, over the sockets %+v", clicks, sent)
	if max := eval[int](ann, `window.e2eMax`); max != clicks {
		t.Fatalf("Ann's own count showed up to %d for %d taps", max, clicks)
	}
}

// A player removed from the game (kicked here; an import that leaves them
// out does the same) is told so at their next tap and taken to the join
// form, over the socket and over POST alike, instead of reading an API
// error on a page that can no longer count anything.
func TestRemovedPlayerIsTakenToTheJoinPage(t *testing.T) {
	e := newEnv(t)
	browser := newBrowser(t)
	for _, path := range []string{"/", "/?transport=sse"} {
		p := newPlayer(t, browser, "Ann")
		p.join(e.base, path)
		p.waitConnected(10*time.Second, "live")
		p.tap(1)
		p.waitView(5*time.Second, "my taps 1", func(v view) bool { return v.MyTaps == "1" })
		if _, err := e.m.Game.Kick(context.Background(), p.id, time.Now()); err != nil {
			t.Fatal(err)
		}
		p.tap(1)
		testenv.Eventually(t, 3*time.Second, func() string {
			if msg := eval[string](p, `document.getElementById('tap-error') ? document.getElementById('tap-error').textContent : ''`); !strings.Contains(msg, "no longer in this game") {
				return fmt.Sprintf("%s: the page says %q", path, msg)
			}
			return ""
		})
		p.do(chromedp.WaitVisible(chromedp.CSS("#username")))
		if n := eval[int](p, `document.querySelectorAll('#tap-button').length`); n != 0 {
			t.Fatalf("%s: still on the game page", path)
		}
	}
}
