package main

import (
	"context"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/coder/websocket"
)

// scan finds every totalTaps, also when the key or the number is cut
// between two reads.
func TestScanAcrossReads(t *testing.T) {
	var in strings.Builder
	var want []int64
	for i := range 200 {
		n := int64(i * 12345)
		want = append(want, n)
		in.WriteString(`event: state` + "\n" + `data: {"gameState":{"blueScore":1,"totalTaps":`)
		in.WriteString(strconv.FormatInt(n, 10) + `,"x":"` + strings.Repeat("y", i*37) + `"}}` + "\n\n")
	}
	for _, r := range []io.Reader{strings.NewReader(in.String()), iotest.OneByteReader(strings.NewReader(in.String())), iotest.HalfReader(strings.NewReader(in.String()))} {
		var got []int64
		var nb int
		err := scan(r, jsonKey, make([]byte, 0, 64), func(n int) { nb += n }, func(v int64) { got = append(got, v) })
		if err != nil || nb != in.Len() || len(got) != len(want) {
			t.Fatalf("err %v bytes %d/%d got %d states, want %d", err, nb, in.Len(), len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("state %d: %d, want %d", i, got[i], want[i])
			}
		}
	}
}

func TestScanHTML(t *testing.T) {
	in := `event: state` + "\n" + `data: <span id="total-taps" class="num" hx-swap-oob="true">1234</span> <b id="x">7</b>` + "\n\n" +
		`event: state` + "\n" + `data: <span id="total-taps" class="num" hx-swap-oob="true">1240</span>` + "\n\n"
	var got []int64
	err := scan(iotest.OneByteReader(strings.NewReader(in)), htmlKey, make([]byte, 0, 256), func(int) {}, func(v int64) { got = append(got, v) })
	if err != nil || len(got) != 2 || got[0] != 1234 || got[1] != 1240 {
		t.Fatalf("got %v %v", got, err)
	}
}

// freshness: each ack is matched with the first state at or above its
// cumulative count; a state seen before the ack counts as 0.
func TestFreshness(t *testing.T) {
	c := &liveClient{track: true, seen: []stateAt{{at: 100, total: 10}, {at: 200, total: 12}, {at: 400, total: 15}}}
	acks := []ack{{at: 150, cum: 1}, {at: 150, cum: 2}, {at: 190, cum: 5}, {at: 390, cum: 6}}
	h := newHist()
	unseen := c.freshness(acks, 10, h)
	if unseen != 1 || h.n != 3 {
		t.Fatalf("unseen %d samples %d", unseen, h.n)
	}
	// 1 -> state 12 at 200 (50 ns), 2 -> 200 (50 ns), 5 -> 15 at 400 (210 ns), 6 unseen.
	if h.max != 210*time.Nanosecond {
		t.Fatalf("max %v", h.max)
	}
}

// Answers to taps, as the page's and the API's sockets carry them.
func TestParseAnswer(t *testing.T) {
	for _, c := range []struct {
		in   string
		want wsAnswer
		ok   bool
	}{
		{`{"type":"ack","seq":12,"count":3}`, wsAnswer{Type: "ack", Seq: 12, Count: 3}, true},
		{`{"type":"error","seq":7,"status":429,"error":"too many taps"}`, wsAnswer{Type: "error", Seq: 7, Status: 429}, true},
		{`<span id="tap-ack" hx-swap-oob="true" hidden data-seq="12" data-count="3"></span>`, wsAnswer{Type: "ack", Seq: 12, Count: 3}, true},
		{`<p id="tap-error" class="tap-error" role="status" hx-swap-oob="true" data-seq="9" data-status="503">Kafka is down</p>`, wsAnswer{Type: "error", Seq: 9, Status: 503}, true},
		{`<span id="my-taps" class="num" data-applied="4" hx-swap-oob="true">4</span>`, wsAnswer{}, false},
		{`{"type":"state","gameState":{}}`, wsAnswer{}, false},
	} {
		got, ok := parseAnswer([]byte(c.in))
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("%s: %+v %v, want %+v %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// The do-nothing socket answers each message with an ack of its seq.
func TestNoopSocketAcks(t *testing.T) {
	srv := httptest.NewServer(noopHandler())
	defer srv.Close()
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, seq := range []int64{1, 2, 30} {
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"count":1,"seq":`+strconv.FormatInt(seq, 10)+`}`)); err != nil {
			t.Fatal(err)
		}
	}
	for _, seq := range []int64{1, 2, 30} {
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := parseAnswer(msg); !ok || a != (wsAnswer{Type: "ack", Seq: seq, Count: 1}) {
			t.Fatalf("answer %s: %+v %v, want the ack of %d", msg, a, ok, seq)
		}
	}
}
