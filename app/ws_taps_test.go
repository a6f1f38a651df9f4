package app_test

// Taps over the open WebSocket (/ws), against the whole app with a real
// redis-server and kfake: every frame of the contract, each refusal with
// the status POST /api/tap would give, and sockets that flood or send
// garbage.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// wsFrame is an answer to a tap on /ws?format=json.
type wsFrame struct {
	Type       string          `json:"type"`
	Seq        json.RawMessage `json:"seq"`
	Count      int             `json:"count"`
	Status     int             `json:"status"`
	Error      string          `json:"error"`
	RetryAfter int             `json:"retryAfter"`
}

// tapSocket is a test client of /ws.
type tapSocket struct {
	t   *testing.T
	c   *websocket.Conn
	ctx context.Context
}

// dialTaps opens base's /ws+query with the given headers (token, cookie).
func dialTaps(t *testing.T, base, query string, hdr http.Header) *tapSocket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws"+query, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("dial /ws%s: %v", query, err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &tapSocket{t: t, c: c, ctx: ctx}
}

func bearerHeader(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

func (s *tapSocket) send(msg string) {
	s.t.Helper()
	if err := s.c.Write(s.ctx, websocket.MessageText, []byte(msg)); err != nil {
		s.t.Fatalf("send %s: %v", msg, err)
	}
}

// next is the next frame that is not a state frame (JSON sockets), or that
// holds want (HTML sockets).
func (s *tapSocket) nextJSON() wsFrame {
	s.t.Helper()
	for {
		_, b, err := s.c.Read(s.ctx)
		if err != nil {
			s.t.Fatalf("read: %v", err)
		}
		// The type says what the rest is: "status" is the connection's
		// ("live") in a state frame, the HTTP status in an error frame.
		var kind struct {
			Type      string          `json:"type"`
			GameState json.RawMessage `json:"gameState"`
		}
		if err := json.Unmarshal(b, &kind); err != nil {
			s.t.Fatalf("frame %s: %v", b, err)
		}
		switch kind.Type {
		case "state":
			if kind.GameState == nil {
				s.t.Fatalf("state frame without gameState: %.200s", b)
			}
			continue
		case "ack", "error":
		default:
			s.t.Fatalf("frame of type %q: %.200s", kind.Type, b)
		}
		var f wsFrame
		if err := json.Unmarshal(b, &f); err != nil {
			s.t.Fatalf("frame %s: %v", b, err)
		}
		return f
	}
}

func (s *tapSocket) nextHTML(want string) string {
	s.t.Helper()
	for {
		_, b, err := s.c.Read(s.ctx)
		if err != nil {
			s.t.Fatalf("read (waiting for %s): %v", want, err)
		}
		if strings.Contains(string(b), want) {
			return string(b)
		}
	}
}

// closedWith reads until the socket ends and returns its close status.
func (s *tapSocket) closedWith() websocket.StatusCode {
	s.t.Helper()
	for {
		if _, _, err := s.c.Read(s.ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

func TestWebSocketTapFrames(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, map[string]string{"TAP_RATE_LIMIT": "0"}, nil)
	base := m.URL()
	ann, bob := join(t, base, "ann"), join(t, base, "bob")

	// JSON socket with a bearer token: acks echo seq (any JSON value) and
	// count; a missing count is 1; extra fields (htmx's HEADERS) and a count
	// sent as a string (htmx's form values) are fine.
	js := dialTaps(t, base, "?format=json", bearerHeader(ann.Token))
	_, first, err := js.c.Read(js.ctx)
	if err != nil || !strings.HasPrefix(string(first), `{"type":"state",`) {
		t.Fatalf("first frame: %v %.100s", err, first)
	}
	for _, c := range []struct {
		msg, seq string
		count    int
	}{
		{`{"count":3,"seq":1}`, `1`, 3},
		{`{"seq":"a-b"}`, `"a-b"`, 1},
		{`{"count":"2","seq":{"n":4},"HEADERS":{"HX-Request":"true"},"other":[1]}`, `{"n":4}`, 2},
		{`{"count":50}`, ``, 50},
	} {
		js.send(c.msg)
		f := js.nextJSON()
		if f.Type != "ack" || string(f.Seq) != c.seq || f.Count != c.count || f.Status != 0 || f.Error != "" {
			t.Fatalf("%s: got %+v (seq %s), want ack seq %s count %d", c.msg, f, f.Seq, c.seq, c.count)
		}
	}
	// Refusals carry the status POST /api/tap would answer and its message.
	for _, c := range []struct {
		msg, seq, text string
		status         int
	}{
		{`{"count":0,"seq":5}`, `5`, "count must be a whole number from 1 to 50", 400},
		{`{"count":51,"seq":6}`, `6`, "count must be a whole number from 1 to 50", 400},
		{`{"count":2.5,"seq":7}`, `7`, "count must be a whole number from 1 to 50", 400},
		{`not json`, ``, "must be a tap", 400},
		{`null`, ``, "must be a tap", 400},
		{`[{"count":1}]`, ``, "must be a tap", 400},
		{`{"count":1,"seq":"` + strings.Repeat("s", 63) + `"}`, ``, "seq must be at most 64 bytes", 400}, // not echoed
	} {
		js.send(c.msg)
		f := js.nextJSON()
		if f.Type != "error" || string(f.Seq) != c.seq || f.Status != c.status || !strings.Contains(f.Error, c.text) {
			t.Fatalf("%s: got %+v (seq %s), want error %d %q", c.msg, f, f.Seq, c.status, c.text)
		}
	}
	code, _, body := call(t, "POST", base+"/api/tap", ann.Token, `{"count":0}`, nil)
	if code != 400 || !strings.Contains(body, "count must be a whole number from 1 to 50") {
		t.Fatalf("the same over HTTP: %d %s", code, body)
	}

	// An anonymous JSON socket gets 401 frames, not a crash, and keeps
	// receiving state.
	anon := dialTaps(t, base, "?format=json", nil)
	anon.send(`{"count":1,"seq":1}`)
	if f := anon.nextJSON(); f.Type != "error" || f.Status != 401 || !strings.Contains(f.Error, "join first") {
		t.Fatalf("anonymous tap: %+v", f)
	}

	// The page's socket, signed in by its session cookie: fragments.
	page := dialTaps(t, base, "", http.Header{"Cookie": {"tapwars_session=" + bob.Token}})
	page.send(`{"count":4,"seq":9}`)
	ack := page.nextHTML(`id="tap-ack"`)
	if !strings.Contains(ack, `data-seq="9"`) || !strings.Contains(ack, `data-count="4"`) || !strings.Contains(ack, `hx-swap-oob="true"`) {
		t.Fatalf("page ack: %s", ack)
	}
	page.send(`{"count":99,"seq":10}`)
	refusal := page.nextHTML(`id="tap-error"`)
	if !strings.Contains(refusal, `data-seq="10"`) || !strings.Contains(refusal, `data-status="400"`) || !strings.Contains(refusal, "count must be a whole number") {
		t.Fatalf("page refusal: %s", refusal)
	}
	anonPage := dialTaps(t, base, "", nil)
	anonPage.send(`{"seq":1}`)
	if h := anonPage.nextHTML(`id="tap-error"`); !strings.Contains(h, `data-status="401"`) {
		t.Fatalf("anonymous page: %s", h)
	}

	// Exactly the acknowledged taps count: 3+1+2+50 for ann, 4 for bob.
	waitTotals(t, base, map[*joined]int64{&ann: 56, &bob: 4})

	// A player kicked while their socket is open is told at once: the
	// socket closes with 1008 "removed from the game". A tap sent at the
	// same moment may still be answered first, and then only with 401.
	if code, body := admin(t, "POST", base+"/admin/kick/"+bob.User.ID, "", nil); code != 200 {
		t.Fatalf("kick: %d %s", code, body)
	}
	page.send(`{"seq":11}`)
	for {
		_, b, err := page.c.Read(page.ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation || !strings.Contains(err.Error(), "removed from the game") {
				t.Fatalf("kicked player's socket: want close 1008 \"removed from the game\", got %v", err)
			}
			break
		}
		if h := string(b); strings.Contains(h, `data-seq="11"`) && (!strings.Contains(h, `data-status="401"`) || !strings.Contains(h, "removed from the game")) {
			t.Fatalf("kicked player's tap: %s", h)
		}
	}
}

func TestWebSocketTapLimits(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, map[string]string{"TAP_RATE_LIMIT": "5"}, nil) // 5/s, burst 50
	base := m.URL()
	ann, bob := join(t, base, "ann"), join(t, base, "bob")
	flood := dialTaps(t, base, "?format=json", bearerHeader(ann.Token))
	calm := dialTaps(t, base, "?format=json", bearerHeader(bob.Token))

	// Over the player's rate: 429 with when to try again, as over HTTP.
	flood.send(`{"count":50,"seq":0}`)
	if f := flood.nextJSON(); f.Type != "ack" || f.Count != 50 {
		t.Fatalf("the burst: %+v", f)
	}
	flood.send(`{"count":5,"seq":1}`)
	f := flood.nextJSON()
	if f.Type != "error" || f.Status != 429 || f.RetryAfter < 1 || !strings.Contains(f.Error, "at most 5 per second") {
		t.Fatalf("over the rate: %+v", f)
	}
	code, _, body := call(t, "POST", base+"/api/tap", ann.Token, `{"count":5}`, nil)
	if code != 429 || !strings.Contains(body, f.Error[:20]) {
		t.Fatalf("the same over HTTP: %d %s", code, body)
	}
	// A page's socket gets the refusal as its #tap-error, with when to try
	// again (the page holds its taps until then).
	page := dialTaps(t, base, "", bearerHeader(ann.Token))
	page.send(`{"count":5,"seq":7}`)
	refusal := regexp.MustCompile(`<p id="tap-error"[^>]*data-seq="7" data-status="429" data-retry-after="[1-9][0-9]*"`)
	for {
		_, b, err := page.c.Read(page.ctx)
		if err != nil {
			t.Fatalf("page socket: %v", err)
		}
		if refusal.Match(b) {
			break
		}
		if strings.Contains(string(b), `id="tap-error"`) || strings.Contains(string(b), `id="tap-ack"`) {
			t.Fatalf("page socket answered %s", b)
		}
	}
	// Keeping on: each message is refused, then the socket is closed with
	// 1008. The other player's socket never notices.
	refused := 1
	for i := 2; i < 40; i++ {
		if err := flood.c.Write(flood.ctx, websocket.MessageText, fmt.Appendf(nil, `{"count":5,"seq":%d}`, i)); err != nil {
			break
		}
	}
	for {
		_, b, err := flood.c.Read(flood.ctx)
		if err != nil {
			if s := websocket.CloseStatus(err); s != websocket.StatusPolicyViolation {
				t.Fatalf("flooding socket ended with %v (%v), want 1008", s, err)
			}
			break
		}
		if strings.Contains(string(b), `"status":429`) {
			refused++
		}
	}
	if refused < 5 || refused > 15 {
		t.Fatalf("%d refusals before the close, want about 10", refused)
	}
	calm.send(`{"count":2,"seq":"x"}`)
	if f := calm.nextJSON(); f.Type != "ack" || f.Count != 2 {
		t.Fatalf("the other socket: %+v", f)
	}

	// Garbage: refused per message (400), then closed with 1008.
	junk := dialTaps(t, base, "?format=json", bearerHeader(bob.Token))
	junk.send(`{"count":"lots"}`)
	if f := junk.nextJSON(); f.Type != "error" || f.Status != 400 {
		t.Fatalf("garbage: %+v", f)
	}
	for range 30 {
		if junk.c.Write(junk.ctx, websocket.MessageBinary, []byte{0, 1, 2}) != nil {
			break
		}
	}
	if s := junk.closedWith(); s != websocket.StatusPolicyViolation {
		t.Fatalf("garbage socket closed with %v, want 1008", s)
	}
	// A message over the read limit ends the socket at once (1009).
	big := dialTaps(t, base, "?format=json", bearerHeader(bob.Token))
	_ = big.c.Write(big.ctx, websocket.MessageText, []byte(`{"count":1,"pad":"`+strings.Repeat("x", 8<<10)+`"}`))
	if s := big.closedWith(); s != websocket.StatusMessageTooBig {
		t.Fatalf("big message: closed with %v, want 1009", s)
	}
	calm.send(`{"seq":"y"}`)
	if f := calm.nextJSON(); f.Type != "ack" {
		t.Fatalf("the other socket after garbage: %+v", f)
	}
	waitTotals(t, base, map[*joined]int64{&ann: 50, &bob: 3})
}

// A tap sent the moment the socket opens arrives before the server took the
// connection over from net/http (which sends the 101 first): it must not be
// lost or garble the frames after it.
func TestWebSocketTapRightAfterHandshake(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, map[string]string{"TAP_RATE_LIMIT": "0"}, nil)
	base := m.URL()
	ann := join(t, base, "ann")
	const sockets = 100
	for i := range sockets {
		s := dialTaps(t, base, "?format=json", bearerHeader(ann.Token))
		s.send(fmt.Sprintf(`{"seq":%d}`, i))
		if f := s.nextJSON(); f.Type != "ack" || string(f.Seq) != fmt.Sprint(i) {
			t.Fatalf("socket %d: %+v", i, f)
		}
		s.c.CloseNow()
	}
	waitTotals(t, base, map[*joined]int64{&ann: sockets})
}

// Many taps of one socket in flight at once: every one is answered exactly
// once, and the answers (written together when Kafka acknowledges them
// together) and the hub's state frames arrive as whole, valid frames.
func TestWebSocketTapsInFlightTogether(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 3, stream.Topic)
	m := admInstance(t, r, k, map[string]string{"TAP_RATE_LIMIT": "0"}, nil)
	base := m.URL()
	ann := join(t, base, "ann")
	s := dialTaps(t, base, "?format=json", bearerHeader(ann.Token))
	const taps = 600
	go func() {
		for i := range taps {
			if s.c.Write(s.ctx, websocket.MessageText, fmt.Appendf(nil, `{"count":2,"seq":%d}`, i)) != nil {
				return
			}
		}
	}()
	seen := make([]bool, taps)
	for range taps {
		f := s.nextJSON() // fails on a frame that is not valid JSON
		var seq int
		if f.Type != "ack" || f.Count != 2 || json.Unmarshal(f.Seq, &seq) != nil || seq < 0 || seq >= taps || seen[seq] {
			t.Fatalf("answer %+v (seq %s)", f, f.Seq)
		}
		seen[seq] = true
	}
	waitTotals(t, base, map[*joined]int64{&ann: 2 * taps})
}

// Sockets that flood refused taps and never read their answers, during a
// timed round's countdown (every tap is 409): the server's live heap stays
// within 50 MB of where it was, each is closed with 1008 after about ten
// refusals, and another player's socket is answered at once throughout.
// One floods with a 3,000-byte seq (refused for it), one with short ones
// (409 each: they count toward the close too), one over a page's socket.
func TestWebSocketFloodOfRefusedTapsIsBounded(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, nil, nil) // the default limits
	base := m.URL()
	ann, bob, cat, dan := join(t, base, "ann"), join(t, base, "bob"), join(t, base, "cat"), join(t, base, "dan")
	calm := dialTaps(t, base, "?format=json", bearerHeader(dan.Token))
	startRound(t, base, `{"seconds": 5, "countdown": 60}`)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapAlloc
	var peak atomic.Uint64
	sampling, stopSampling := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		// The live heap: collected first, so garbage the collector has not
		// reached yet on a busy machine is not taken for memory held
		// (before the bound, the queued answers were live: +511 MB).
		var ms runtime.MemStats
		for sampling.Err() == nil {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	long := strings.Repeat("x", 3000)
	floods := []struct {
		who   joined
		query string
		msg   string
	}{
		{ann, "?format=json", `{"count":50,"seq":"` + long + `"}`},
		{bob, "?format=json", `{"count":50,"seq":1}`},
		{cat, "", `{"count":50,"seq":"` + long + `"}`},
	}
	const floodFor = 10 * time.Second
	sent := make([]int, len(floods))
	done := make(chan int)
	sockets := make([]*tapSocket, len(floods))
	for i, f := range floods {
		sockets[i] = dialTaps(t, base, f.query, bearerHeader(f.who.Token))
		go func() {
			defer func() { done <- i }()
			// (A write's context ending would close the socket from
			// this side: the socket's own is longer than the flood.)
			for end := time.Now().Add(floodFor); time.Now().Before(end); sent[i]++ {
				if sockets[i].c.Write(sockets[i].ctx, websocket.MessageText, []byte(f.msg)) != nil {
					return // closed by the server
				}
			}
		}()
	}
	// Meanwhile the calm socket's taps are answered at once (409: the round
	// has not started), once a second: no faster than a socket is forgiven
	// a refusal, so the calm socket itself is never closed for them.
	var slowest time.Duration
	for i := 0; time.Duration(i)*time.Second < floodFor; i++ {
		at := time.Now()
		calm.send(fmt.Sprintf(`{"seq":%d}`, i))
		if f := calm.nextJSON(); f.Type != "error" || f.Status != 409 || string(f.Seq) != fmt.Sprint(i) {
			t.Fatalf("calm socket's tap %d: %+v", i, f)
		}
		slowest = max(slowest, time.Since(at))
		time.Sleep(time.Second - time.Since(at))
	}
	stopSampling()
	<-sampled
	grew := int64(peak.Load()) - int64(baseline)
	t.Logf("flood: %v messages sent; heap %d MB before, peak %d MB (+%d MB); calm socket answered within %v",
		sent, baseline>>20, peak.Load()>>20, grew>>20, slowest)
	if grew > 50<<20 {
		t.Errorf("the heap grew by %d MB during the flood, want < 50 MB", grew>>20)
	}
	if slowest > 2*time.Second {
		t.Errorf("the calm socket waited %v for an answer during the flood", slowest)
	}
	for i, s := range sockets {
		refused := 0
		for {
			_, b, err := s.c.Read(s.ctx)
			if err != nil {
				if st := websocket.CloseStatus(err); st != websocket.StatusPolicyViolation {
					t.Errorf("flood %d (%.40s): ended with %v (%v) after %d refusals, want 1008", i, floods[i].msg, st, err, refused)
				}
				break
			}
			if strings.Contains(string(b), `"type":"error"`) || strings.Contains(string(b), `id="tap-error"`) {
				refused++
				if strings.Contains(string(b), long) {
					t.Errorf("flood %d: an answer echoes the 3,000-byte seq", i)
				}
			}
		}
		// ~10 strikes, plus the taps already on their way when the close
		// was queued (at most the 16 in flight).
		if refused < 5 || refused > 10+16+1 {
			t.Errorf("flood %d: %d refusals before the close, want about 10", i, refused)
		}
	}
	for range floods {
		<-done
	}
	// The calm socket is still open and answered.
	calm.send(`{"seq":"after"}`)
	if f := calm.nextJSON(); f.Type != "error" || f.Status != 409 {
		t.Fatalf("calm socket after the flood: %+v", f)
	}
}
