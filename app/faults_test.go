package app_test

// Faults with the real parts: Redis stops, the broker stops, and what
// operators look at meanwhile (/readyz, /metrics, logs).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tapwars/tapwars/app"
	"github.com/tapwars/tapwars/auth"
	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/live"
	"github.com/tapwars/tapwars/stream"
)

// readyz returns /readyz's status and body as a map.
func readyz(t *testing.T, base string) (int, map[string]string) {
	t.Helper()
	var body map[string]string
	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("readyz body: %v", err)
	}
	return res.StatusCode, body
}

// metricValue returns the value of one sample line of /metrics (name with
// its labels exactly as exposed), or -1 when absent.
func metricValue(t *testing.T, base, sample string) float64 {
	t.Helper()
	_, _, body := call(t, "GET", metricsOf(t, base), "", "", nil)
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// Redis stops and comes back: taps are still accepted into Kafka
// meanwhile (the tap path reads no Redis for players this instance knows)
// until its view of the round can no longer be trusted, then refused 503,
// pages show "reconnecting" and keep their last numbers, /readyz names
// redis, the consumer retries with backoff, and afterwards every accepted
// tap is counted exactly once.
func TestRedisOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 3, stream.Topic)
	m := startNode(t, r, k, nil, func(m *app.Main) {
		m.HubOptions = live.Options{IdleRefresh: 200 * time.Millisecond}
	})
	base := m.URL()
	a, b := join(t, base, "ann"), join(t, base, "bob")
	// A player who joined elsewhere (straight in the store): this
	// instance's handlers have not cached them.
	u, err := m.Store.Join(context.Background(), "stranger", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	stranger := auth.NewSigner([]byte("test-secret-0123456789")).Sign(u.ID)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := sseStream(t, ctx, base+"/events?format=json", "")
	page := sseStream(t, ctx, base+"/events", a.Token)
	// Both tap before the outage, so this instance has them cached (it
	// may drop its cache when the admin channel (re)connects at start).
	for i := range 5 {
		if code, _, body := call(t, "POST", base+"/api/tap", []joined{a, b}[i%2].Token, "", nil); code != 202 {
			t.Fatalf("tap: %d %s", code, body)
		}
	}
	waitSSE(t, events, 5*time.Second, "5 taps", stateIs(t, func(s game.Snapshot) bool { return s.GameState.TotalTaps == 5 }))
	applyErrors := metricValue(t, base, "tapwars_apply_errors_total")

	stopped := time.Now()
	r.Stop()
	// Live clients are told, within about a second; the state they get
	// with it still has the last good numbers.
	waitSSE(t, events, 10*time.Second, "reconnecting status", func(m sseMsg) bool {
		return m.event == "status" && m.data == `{"status":"reconnecting"}`
	})
	t.Logf("SSE status reconnecting %v after Redis stopped", time.Since(stopped).Round(time.Millisecond))
	waitSSE(t, page, 5*time.Second, "reconnecting fragment", func(m sseMsg) bool {
		return m.event == "state" && strings.Contains(m.data, `id="connection-status" hx-swap-oob="true"`) &&
			strings.Contains(m.data, `data-state="reconnecting"`)
	})
	// Readiness names redis; what needs Redis answers 503 (Retry-After),
	// never zeros or a 500: the state, joins, and taps of a player this
	// instance has not seen yet (it cannot look them up).
	var checks sync.WaitGroup
	checks.Go(func() {
		// A short reason, without the address (or anything else a raw
		// error could carry).
		if code, body := readyz(t, base); code != 503 || body["redis"] == "ok" || len(body["redis"]) > 120 ||
			strings.Contains(body["redis"], "127.0.0.1") || body["kafka"] != "ok" {
			t.Errorf("readyz while Redis is down: %d %v", code, body)
		}
	})
	for _, c := range []struct{ what, method, path, token, body string }{
		{"game-state", "GET", "/api/game-state", "", ""},
		{"join", "POST", "/api/join", "", `{"username":"carl"}`},
		{"tap of a player unknown here", "POST", "/api/tap", stranger, ""},
	} {
		checks.Go(func() {
			if code, hdr, body := call(t, c.method, base+c.path, c.token, c.body, nil); code != 503 || hdr.Get("Retry-After") == "" {
				t.Errorf("%s while Redis is down: %d %s", c.what, code, body)
			}
		})
	}
	checks.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Taps go on: 202 once Kafka has them.
	outage := 0
	for i := range 20 {
		p := []joined{a, b}[i%2]
		if code, _, body := call(t, "POST", base+"/api/tap", p.Token, `{"count":2}`, nil); code != 202 {
			t.Fatalf("tap while Redis is down: %d %s", code, body)
		}
		outage += 2
	}
	// The consumer's attempts to apply them fail and back off meanwhile.
	testenv.Eventually(t, 10*time.Second, func() string {
		if got := metricValue(t, base, "tapwars_apply_errors_total"); got <= applyErrors {
			return fmt.Sprintf("apply_errors_total %v", got)
		}
		return ""
	})
	// Once the instance's view of the round is older than it may trust
	// (ROUND_LEASE less a quarter: another instance that reaches Redis
	// could have started a round meanwhile), taps get 503 instead of a
	// guess.
	// A tap accepted just before and acknowledged by Kafka just after may
	// get 504 "may still count" (mayCount): it is in the log, and counts.
	mayCount := 0
	testenv.Eventually(t, 10*time.Second, func() string {
		code, hdr, body := call(t, "POST", base+"/api/tap", a.Token, "", nil)
		switch {
		case code == http.StatusAccepted:
			outage++
			return "still accepted"
		case code == http.StatusGatewayTimeout && strings.Contains(body, "may still count"):
			mayCount++
			return "may still count"
		case code != http.StatusServiceUnavailable || !strings.Contains(body, "cannot be confirmed") || hdr.Get("Retry-After") == "":
			t.Fatalf("a tap once the round cannot be confirmed: %d %s", code, body)
		}
		return ""
	})
	t.Logf("taps refused with 503 %v after Redis stopped", time.Since(stopped).Round(time.Millisecond))
	restarted := time.Now()
	r.Start()

	// The stream says live again, then shows every tap exactly once.
	waitSSE(t, events, 10*time.Second, "live status", func(m sseMsg) bool {
		return m.event == "status" && m.data == `{"status":"live"}`
	})
	want := int64(5 + outage + mayCount) // each 504 here was acknowledged by Kafka
	waitSSE(t, events, 15*time.Second, "all taps", stateIs(t, func(s game.Snapshot) bool {
		if s.GameState.TotalTaps > want {
			t.Fatalf("counted %d of %d taps", s.GameState.TotalTaps, want)
		}
		return s.GameState.TotalTaps == want
	}))
	t.Logf("all %d taps counted %v after Redis came back", want, time.Since(restarted).Round(time.Millisecond))
	if code, body := readyz(t, base); code != 200 || body["redis"] != "ok" {
		t.Fatalf("readyz after Redis came back: %d %v", code, body)
	}
	checkExact(t, base, k.Addrs(), nil, []joined{a, b})
}

// The broker stops and comes back: taps are answered 503 (with
// Retry-After) within 5 s while it is down, /readyz names kafka, taps are
// accepted again once it is back without restarting the app, and nothing
// acknowledged is lost or counted twice.
func TestBrokerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	testenv.EachKafka(t, testBrokerOutage)
}

// stopStart stops and restarts a one-node broker of either kind.
func stopStart(k testenv.Broker) (stop, start func()) {
	switch k := k.(type) {
	case *testenv.ApacheKafka:
		return func() { k.Stop(0) }, func() { k.Start(0) }
	case *testenv.Kafka:
		return k.Stop, k.Restart
	}
	panic(fmt.Sprintf("stopStart: %T", k))
}

func testBrokerOutage(t *testing.T, kafka string) {
	r, k := testenv.StartRedis(t), testenv.StartBroker(t, kafka, 3, stream.Topic)
	stopBroker, startBroker := stopStart(k)
	m := startNode(t, r, k, nil, nil)
	base := m.URL()
	var players []joined
	for i := range 4 {
		players = append(players, join(t, base, fmt.Sprintf("bk%d", i)))
	}
	stopLoad := tapLoad([]string{base}, players, 4)
	time.Sleep(700 * time.Millisecond)

	stopBroker()
	down := time.Now()
	// Every tap sent while the broker is down is answered 503 within 5 s;
	// /readyz names kafka; /healthz (the process lives) stays 200.
	var (
		checks  sync.WaitGroup
		mu      sync.Mutex
		slowest time.Duration
	)
	for i := range 6 {
		checks.Go(func() {
			time.Sleep(time.Duration(i) * 300 * time.Millisecond)
			start := time.Now()
			code, hdr, body := call(t, "POST", base+"/api/tap", players[i%len(players)].Token, "", nil)
			d := time.Since(start)
			mu.Lock()
			slowest = max(slowest, d)
			mu.Unlock()
			if code != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "unavailable") {
				t.Errorf("tap while the broker is down: %d %s", code, body)
			}
			if d > 5*time.Second {
				t.Errorf("503 after %v", d)
			}
		})
	}
	checks.Go(func() {
		if code, body := readyz(t, base); code != 503 || body["kafka"] == "ok" || strings.Contains(body["kafka"], "127.0.0.1") || body["redis"] != "ok" {
			t.Errorf("readyz while the broker is down: %d %v", code, body)
		}
	})
	checks.Go(func() {
		if code, _, _ := call(t, "GET", base+"/healthz", "", "", nil); code != 200 {
			t.Errorf("healthz while the broker is down: %d", code)
		}
	})
	checks.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("taps answered 503 in at most %v while the broker was down", slowest.Round(time.Millisecond))

	startBroker()
	back := time.Now()
	t.Logf("broker down for %v", back.Sub(down).Round(time.Millisecond))
	testenv.Eventually(t, 20*time.Second, func() string {
		code, _, body := call(t, "POST", base+"/api/tap", players[0].Token, "", nil)
		if code != 202 {
			return fmt.Sprintf("tap after the broker came back: %d %s", code, body)
		}
		return ""
	})
	t.Logf("taps accepted again %v after the broker came back", time.Since(back).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	acked := ackedIDs(stopLoad())
	if code, body := readyz(t, base); code != 200 {
		t.Fatalf("readyz after the broker came back: %d %v", code, body)
	}
	checkExact(t, base, k.Addrs(), acked, players)
}

// Every metric operators need is exposed under its documented name.
func TestMetricsNames(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	m := startNode(t, r, k, nil, nil)
	base := m.URL()
	a := join(t, base, "meg")
	for range 3 {
		if code, _, body := call(t, "POST", base+"/api/tap", a.Token, "", nil); code != 202 {
			t.Fatalf("tap: %d %s", code, body)
		}
	}
	if code, _, _ := call(t, "POST", base+"/api/tap", "bad-token", "", nil); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := sseStream(t, ctx, base+"/events?format=json", "")
	waitSSE(t, events, 10*time.Second, "3 taps", stateIs(t, func(s game.Snapshot) bool { return s.GameState.TotalTaps == 3 }))
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws?format=json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, _, err := ws.Read(ctx); err != nil {
		t.Fatal(err)
	}

	_, _, body := call(t, "GET", metricsOf(t, base), "", "", nil)
	for _, want := range []string{
		`# TYPE tapwars_taps_accepted_total counter`, `tapwars_taps_accepted_total `,
		`# TYPE tapwars_taps_applied_total counter`, `tapwars_taps_applied_total `,
		`# TYPE tapwars_taps_rejected_total counter`, `tapwars_taps_rejected_total{reason="unauthorized"} `,
		`# TYPE tapwars_consumer_lag gauge`, `tapwars_consumer_lag{partition="0"} `, `tapwars_consumer_lag{partition="1"} `,
		`# TYPE tapwars_batch_size histogram`, `tapwars_batch_size_bucket{le=`,
		`# TYPE tapwars_apply_seconds histogram`, `tapwars_apply_seconds_bucket{le=`,
		`# TYPE tapwars_live_connections gauge`, `tapwars_live_connections{transport="sse"} `, `tapwars_live_connections{transport="ws"} `,
		`# TYPE tapwars_broadcast_seconds histogram`, `tapwars_broadcast_seconds_bucket{le=`,
		`# TYPE tapwars_http_requests_total counter`, `tapwars_http_requests_total{route="/api/tap",status="202"} `,
		`tapwars_http_requests_total{route="/api/tap",status="401"} `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}

// syncBuf is a bytes.Buffer safe for the logger and the test at once.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// LOG_FORMAT=json writes one JSON object per line; every request's line
// carries its request id (the X-Request-ID answered, or the one sent);
// neither tokens, cookies, SESSION_SECRET nor ADMIN_TOKEN ever reach the
// log, even at debug level. The default format is slog's text.
func TestLogs(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	const secret, adminToken = "very-secret-session-key-4711", "admin-token-0123456789abcdef-0123"
	var logs syncBuf
	m := startNode(t, r, k, map[string]string{"LOG_FORMAT": "json", "LOG_LEVEL": "debug", "SESSION_SECRET": secret, "ADMIN_TOKEN": adminToken},
		func(m *app.Main) { m.LogOutput = &logs })
	base := m.URL()

	a := join(t, base, "lou")
	// A tap with the token, one with the cookie, one with a forged token.
	code, hdr, _ := call(t, "POST", base+"/api/tap", a.Token, "", nil)
	if code != 202 {
		t.Fatalf("tap %d", code)
	}
	tapID := hdr.Get("X-Request-ID")
	req, _ := http.NewRequest("POST", base+"/api/tap", nil)
	req.AddCookie(&http.Cookie{Name: "tapwars_session", Value: a.Token})
	req.Header.Set("X-Request-ID", "trace-me-123")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 202 {
		t.Fatalf("tap with cookie: %v %v", res, err)
	}
	res.Body.Close()
	forged := a.Token[:len(a.Token)-3] + "abc"
	call(t, "POST", base+"/api/tap", forged, "", nil)
	call(t, "GET", base+"/api/game-state", "", "", nil)
	call(t, "GET", base+"/nope", "", "", nil)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	out := logs.String()
	for _, s := range []string{a.Token, forged, secret, adminToken} {
		if strings.Contains(out, s) {
			t.Errorf("the log contains a secret or token %.12q...", s)
		}
	}
	var requests int
	ids := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		for _, f := range []string{"time", "level", "msg"} {
			if _, ok := line[f]; !ok {
				t.Fatalf("line without %s: %s", f, sc.Text())
			}
		}
		if line["msg"] == "http" {
			requests++
			id, _ := line["id"].(string)
			if id == "" {
				t.Errorf("request line without id: %s", sc.Text())
			}
			ids[id] = true
		}
	}
	if requests < 6 {
		t.Fatalf("%d request lines in:\n%s", requests, out)
	}
	if !ids[tapID] || !ids["trace-me-123"] {
		t.Fatalf("request ids %q and trace-me-123 not logged: %v", tapID, ids)
	}

	// Text is the default: `time=... level=... msg=...` lines.
	var c app.Config
	if err := c.Parse(nil, func(string) string { return "" }, nil); err != nil || c.LogFormat != "text" {
		t.Fatalf("default LOG_FORMAT %q %v", c.LogFormat, err)
	}
	var buf bytes.Buffer
	app.NewLogger(&buf, c.LogFormat, c.LogLevel).Info("hello", "id", "x")
	if !regexp.MustCompile(`^time=\S+ level=INFO msg=hello id=x\n$`).MatchString(buf.String()) {
		t.Fatalf("text log line %q", buf.String())
	}
}
