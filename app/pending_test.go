package app_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// The broker takes taps but answers after TAP_TIMEOUT: the tap is not
// answered "not counted" (503, "try again"), since it may still count. It
// gets 504 saying so, over HTTP and over the socket; the socket follows
// with the ack once Kafka answers, and every such tap counts. Before,
// both got 503 "try again" and counted anyway.
func TestTapPastTimeoutMayStillCount(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := instance(t, r, k, map[string]string{"TAP_TIMEOUT": "500ms", "TAP_RATE_LIMIT": "0"})
	base := m.URL()
	a := join(t, base, "pat")
	tapN(t, base, a, 1)
	waitTotals(t, base, map[*joined]int64{&a: 1})
	js := dialTaps(t, base, "?format=json", bearerHeader(a.Token))

	release := make(chan struct{})
	var once sync.Once
	done := func() { once.Do(func() { close(release) }) }
	defer done()
	holdProduceTo(k, stream.Topic, release)

	// The counter is the process's: other tests' 504s are in it too.
	pendingBefore := max(metricValue(t, base, `tapwars_taps_rejected_total{reason="pending"}`), 0)
	code, hdr, body := call(t, "POST", base+"/api/tap", a.Token, `{"count":3}`, nil)
	if code != 504 || !strings.Contains(body, "may still count") || hdr.Get("Retry-After") != "" {
		t.Fatalf("tap past TAP_TIMEOUT over HTTP: %d %s (Retry-After %q)", code, body, hdr.Get("Retry-After"))
	}
	js.send(`{"count":2,"seq":7}`)
	f := js.nextJSON()
	if f.Type != "error" || f.Status != 504 || string(f.Seq) != "7" || !strings.Contains(f.Error, "may still count") {
		t.Fatalf("tap past TAP_TIMEOUT over the socket: %+v", f)
	}
	if n := metricValue(t, base, `tapwars_taps_rejected_total{reason="pending"}`) - pendingBefore; n != 2 {
		t.Fatalf("pending taps counted %v more, want 2", n)
	}
	done()
	if f := js.nextJSON(); f.Type != "ack" || string(f.Seq) != "7" || f.Count != 2 {
		t.Fatalf("after Kafka answered: %+v, want the ack of seq 7", f)
	}
	waitTotals(t, base, map[*joined]int64{&a: 1 + 3 + 2})
}

// In a timed round, a tap answered 504 during play (Kafka answers after
// the bell and after the settling time) is in the round's result: the
// result waits for this instance's taps that may still count. Without the
// wait, the result left it out and the scores counted it.
func TestTimedRoundWaitsForTapsThatMayCount(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, map[string]string{"TAP_TIMEOUT": "500ms", "TAP_RATE_LIMIT": "0"}, nil)
	base := m.URL()
	a := join(t, base, "quin")
	rs := startRound(t, base, `{"seconds": 2, "countdown": 1}`)
	time.Sleep(time.Until(time.UnixMilli(rs.StartsAt).Add(200 * time.Millisecond)))

	release := make(chan struct{})
	var once sync.Once
	done := func() { once.Do(func() { close(release) }) }
	defer done()
	holdProduceTo(k, stream.Topic, release)
	if code, _, body := call(t, "POST", base+"/api/tap", a.Token, `{"count":5}`, nil); code != 504 {
		t.Fatalf("tap in play while Kafka is slow: %d %s", code, body)
	}
	// Kafka answers after the bell and the settling time (TAP_TIMEOUT + 1 s).
	time.Sleep(time.Until(time.UnixMilli(rs.EndsAt).Add(2500 * time.Millisecond)))
	done()
	final := finalRound(t, base, rs.Number, 20*time.Second)
	if final.Blue+final.Red != 5 {
		t.Fatalf("result %+v: want the 5 taps answered 504 during play", final)
	}
	waitTotals(t, base, map[*joined]int64{&a: 5})
}
