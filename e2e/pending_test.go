package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// Kafka takes the taps but answers after TAP_TIMEOUT: the phone shows the
// server's "may still count" (not "not counted, try again"), keeps the taps
// it showed at once while their answer is pending, and keeps them when the
// ack follows on the socket; then the same by POST /api/tap. The
// screenshot is the phone while the answer is pending.
func TestPhoneShowsTapsThatMayStillCount(t *testing.T) {
	e := newEnvWith(t, map[string]string{"TAP_TIMEOUT": "500ms", "TAP_RATE_LIMIT": "0"})
	ann := watchedPlayer(t, e)
	ann.tap(2)
	ann.waitView(5*time.Second, "my taps 2", func(v view) bool { return v.MyTaps == "2" })
	// The page shows taps before their ack: wait for it, so the held taps
	// below are only the next three.
	for deadline := time.Now().Add(5 * time.Second); sentOverSocket(ann).Acked != 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the first two taps were not acknowledged: %+v\n%s", sentOverSocket(ann), socketLog(ann))
		}
	}

	hold := gateTaps(t, e)
	done := hold()
	ann.tap(3)
	deadline := time.Now().Add(10 * time.Second)
	for !eval[bool](ann, `window.e2eWS.log.some(l => / refused \S+ 504$/.test(l))`) {
		if time.Now().After(deadline) {
			t.Fatalf("no 504 answer on the socket:\n%s", socketLog(ann))
		}
		time.Sleep(50 * time.Millisecond)
	}
	msg := eval[string](ann, `document.getElementById('tap-error').textContent`)
	if !strings.Contains(msg, "may still count") {
		t.Fatalf("the phone says %q", msg)
	}
	ann.screenshot("phone-tap-may-still-count", 375, 800, true)
	// The page shows sure taps at once (app.js): a 504 is no refusal, so
	// they stay shown while the answer is pending, not taken back.
	if v := ann.view(); v.MyTaps != "5" {
		t.Fatalf("my taps %q while the answer is pending, want 5 (shown at once, not taken back on the 504)", v.MyTaps)
	}
	done()
	// The count showed 5 already; the late ack follows on the socket.
	deadline = time.Now().Add(10 * time.Second)
	for sent := sentOverSocket(ann); sent.Acked != 5; sent = sentOverSocket(ann) {
		if time.Now().After(deadline) {
			t.Fatalf("acknowledged on the socket: %+v, want 5 (the late ack counts)\n%s", sent, socketLog(ann))
		}
		time.Sleep(50 * time.Millisecond)
	}
	ann.waitView(10*time.Second, "my taps 5", func(v view) bool { return v.MyTaps == "5" })
	t.Logf("socket:\n%s", socketLog(ann))

	// The same by POST (the page on SSE sends its taps as POST /api/tap):
	// a 504 keeps the taps shown while they may still count, as on the
	// socket. Before, the page took them back at the 504.
	ann.do(chromedp.Navigate(e.base+"/?transport=sse"), chromedp.WaitVisible(chromedp.CSS("#tap-button")))
	ann.waitConnected(10*time.Second, "live")
	ann.waitView(5*time.Second, "my taps 5", func(v view) bool { return v.MyTaps == "5" })
	watchMyTaps(ann)
	eval[bool](ann, `(() => { window.e2ePosts = []; const f = window.fetch;
		window.fetch = function (url, opts) { return f.apply(this, arguments).then(r => { if (String(url).endsWith('/api/tap')) window.e2ePosts.push(r.status); return r; }); };
		return true; })()`)
	done = hold()
	ann.tap(3)
	deadline = time.Now().Add(10 * time.Second)
	for !eval[bool](ann, `window.e2ePosts.includes(504)`) {
		if time.Now().After(deadline) {
			t.Fatalf("no 504 answer to a POST: %v", eval[[]int](ann, `window.e2ePosts`))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the answer's body is read and handled
	if msg := eval[string](ann, `document.getElementById('tap-error').textContent`); !strings.Contains(msg, "may still count") {
		t.Fatalf("the phone says %q after a POST answered 504", msg)
	}
	if v := ann.view(); v.MyTaps != "8" {
		t.Fatalf("my taps %q while the POST's answer is pending, want 8 (shown at once, not taken back on the 504)", v.MyTaps)
	}
	eval[bool](ann, `(() => { window.e2eMin = 8; new MutationObserver(() => {
		window.e2eMin = Math.min(window.e2eMin, parseInt(document.getElementById('my-taps').textContent, 10));
	}).observe(document.querySelector('.mystats'), {subtree: true, childList: true, characterData: true}); return true; })()`)
	done()
	testenv.Eventually(t, 10*time.Second, func() string {
		if s := e.state(); s.GameState.TotalTaps != 8 {
			return fmt.Sprintf("total %d, want 8 (the late taps count)", s.GameState.TotalTaps)
		}
		return ""
	})
	ann.waitView(10*time.Second, "my taps 8", func(v view) bool { return v.MyTaps == "8" })
	time.Sleep(500 * time.Millisecond) // the live updates after the late ack
	if lo, hi := eval[int](ann, `window.e2eMin`), eval[int](ann, `window.e2eMax`); lo != 8 || hi != 8 {
		t.Fatalf("after the 504 my taps went from %d to %d, want 8 throughout", lo, hi)
	}
}

// gateTaps lets the test hold the broker's produce requests to the taps
// topic: hold() holds every one until the returned release is called (the
// test's end calls it too). One control for the whole test, so a request
// sleeps at most once (kfake races when one request sleeps twice).
func gateTaps(t *testing.T, e *env) (hold func() (release func())) {
	t.Helper()
	var mu sync.Mutex
	var gate chan struct{} // nil: requests go through
	k := e.kafka.Cluster
	k.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		mu.Lock()
		g := gate
		mu.Unlock()
		if g == nil {
			return nil, nil, false
		}
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			if tp.Topic == stream.Topic {
				k.SleepControl(func() { <-g })
				break
			}
		}
		return nil, nil, false
	})
	return func() func() {
		g := make(chan struct{})
		mu.Lock()
		gate = g
		mu.Unlock()
		var once sync.Once
		release := func() {
			once.Do(func() {
				mu.Lock()
				if gate == g {
					gate = nil
				}
				mu.Unlock()
				close(g)
			})
		}
		t.Cleanup(release)
		return release
	}
}
