package app_test

import (
	"strings"
	"sync"
	"testing"

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

	code, hdr, body := call(t, "POST", base+"/api/tap", a.Token, `{"count":3}`, nil)
	if code != 504 || !strings.Contains(body, "may still count") || hdr.Get("Retry-After") != "" {
		t.Fatalf("tap past TAP_TIMEOUT over HTTP: %d %s (Retry-After %q)", code, body, hdr.Get("Retry-After"))
	}
	js.send(`{"count":2,"seq":7}`)
	f := js.nextJSON()
	if f.Type != "error" || f.Status != 504 || string(f.Seq) != "7" || !strings.Contains(f.Error, "may still count") {
		t.Fatalf("tap past TAP_TIMEOUT over the socket: %+v", f)
	}
	if n := metricValue(t, base, `tapwars_taps_rejected_total{reason="pending"}`); n != 2 {
		t.Fatalf("pending taps counted %v, want 2", n)
	}
	done()
	if f := js.nextJSON(); f.Type != "ack" || string(f.Seq) != "7" || f.Count != 2 {
		t.Fatalf("after Kafka answered: %+v, want the ack of seq 7", f)
	}
	waitTotals(t, base, map[*joined]int64{&a: 1 + 3 + 2})
}
