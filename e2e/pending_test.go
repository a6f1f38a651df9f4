package e2e

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tapwars/tapwars/stream"
)

// Kafka takes the taps but answers after TAP_TIMEOUT: the phone shows the
// server's "may still count" (not "not counted, try again"), keeps the taps
// it showed at once while their answer is pending, and keeps them when the
// ack follows on the socket. The screenshot is the phone while the answer is pending.
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

	release := make(chan struct{})
	var once sync.Once
	done := func() { once.Do(func() { close(release) }) }
	defer done()
	k := e.kafka.Cluster
	k.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			if tp.Topic == stream.Topic {
				k.SleepControl(func() { <-release })
				break
			}
		}
		return nil, nil, false
	})
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
}
