package app_test

// Safe for a crowd, closed to strangers: a room behind one address with the
// default settings, cross-origin requests, security headers, body types,
// the public state, a partition that cannot be applied.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tapwars/tapwars/app"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// A room of 300 players behind one address joins within a minute, keeps a
// live stream each and taps, with no setting changed; a flood from that
// address is still throttled, each refusal naming its setting.
func TestRoomBehindOneAddressWithDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("300 players")
	}
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	m := instance(t, r, k, nil) // the defaults: every client is 127.0.0.1
	base := m.URL()
	const room = 300
	players := make([]joined, room)
	var wg sync.WaitGroup
	var failed atomic.Int64
	sem := make(chan struct{}, 16)
	for i := range room {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var j joined
			code, _, body := call(t, "POST", base+"/api/join", "", fmt.Sprintf(`{"username":"p%d"}`, i), &j)
			if code != 201 {
				failed.Add(1)
				t.Errorf("player %d of the room: %d %s", i, code, body)
			}
			players[i] = j
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d players behind one address were refused with the defaults", failed.Load(), room)
	}
	// Each keeps a live stream open: half SSE, half WebSocket.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/ws?format=json"
	for i, p := range players {
		if i%2 == 0 {
			code, msg, c := openSSE(t, base, map[string]string{"Authorization": "Bearer " + p.Token})
			if code != 200 {
				t.Fatalf("stream %d: %d %s", i, code, msg)
			}
			closers = append(closers, c)
			continue
		}
		conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + p.Token}}})
		if err != nil {
			t.Fatalf("socket %d: %v", i, err)
		}
		closers = append(closers, func() { conn.CloseNow() })
	}
	// And taps.
	for i, p := range players {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if code, _, body := call(t, "POST", base+"/api/tap", p.Token, `{"count":2}`, nil); code != 202 {
				t.Errorf("tap of player %d: %d %s", i, code, body)
			}
		})
	}
	wg.Wait()
	want := map[*joined]int64{}
	for i := range players {
		want[&players[i]] = 2
	}
	waitTotals(t, base, want)

	// A flood of joins from the same address is cut off well before
	// thousands, by the address's budget (JOIN_RATE_LIMIT, at most half of
	// the instance's) before the instance's (JOINS_PER_SECOND).
	refusedAt, msg := 0, ""
	for i := range 2000 {
		code, hdr, body := call(t, "POST", base+"/api/join", "", `{}`, nil)
		if code == 429 {
			if hdr.Get("Retry-After") == "" {
				t.Fatalf("429 without Retry-After")
			}
			refusedAt, msg = room+i, body
			break
		}
	}
	if refusedAt == 0 || refusedAt > 1000 {
		t.Fatalf("a flood of joins from one address was refused only at %d", refusedAt)
	}
	if !strings.Contains(msg, "JOINS_PER_SECOND") && !strings.Contains(msg, "JOIN_RATE_LIMIT") {
		t.Fatalf("the refusal does not name the setting that raises it: %s", msg)
	}
	t.Logf("flood refused at join %d: %s", refusedAt, msg)
	if n := metricValue(t, base, `tapwars_limit_refusals_total{limit="joins_total"}`) + metricValue(t, base, `tapwars_limit_refusals_total{limit="joins_per_address"}`); n < 1 {
		t.Fatalf("refusals not counted in /metrics: %v", n)
	}
}

// With the default MAX_CONNECTIONS_PER_IP, one address can hold a room's
// streams but not thousands: the 1,001st is refused, naming the setting.
func TestStreamFloodFromOneAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 streams")
	}
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := instance(t, r, k, nil)
	addr := m.Addr()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	open := func() (int, string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /events?format=json HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if res.StatusCode != 200 {
			var e struct{ Error string }
			_ = json.NewDecoder(res.Body).Decode(&e)
			return res.StatusCode, e.Error
		}
		return 200, ""
	}
	for i := range 1000 {
		if code, msg := open(); code != 200 {
			t.Fatalf("stream %d from one address: %d %s", i, code, msg)
		}
	}
	code, msg := open()
	if code != 429 || !strings.Contains(msg, "MAX_CONNECTIONS_PER_IP") {
		t.Fatalf("stream 1,001 from one address: %d %s", code, msg)
	}
}

// Cookie-authenticated state changes from another origin are refused; the
// game's own pages and bearer-token API clients are not affected.
func TestCrossOriginRequestsRefused(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	base := m.URL()
	browser := browserClient()
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	with := func(h map[string]string, kv ...string) map[string]string { // h with these headers on top
		extra := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			extra[kv[i]] = kv[i+1]
		}
		return overlay(h, extra)
	}
	// Login CSRF: a cross-site form cannot sign the browser in.
	if code, hdr, body := admReq(t, browser, "POST", base+"/join", "username=victim", with(form, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site")); code != 403 || hdr.Get("Set-Cookie") != "" || !strings.Contains(body, "cross-origin") {
		t.Fatalf("cross-site POST /join: %d %v %s", code, hdr.Get("Set-Cookie"), body)
	}
	// The page's own form (same origin) works.
	if code, _, body := admReq(t, browser, "POST", base+"/join", "username=ann", with(form, "Origin", base, "Sec-Fetch-Site", "same-origin")); code != 303 {
		t.Fatalf("same-origin POST /join: %d %s", code, body)
	}
	var me joined
	if code, _, body := admReq(t, browser, "POST", base+"/api/join", "", nil); code != 200 || json.Unmarshal([]byte(body), &me) != nil {
		t.Fatalf("session: %d %s", code, body)
	}
	// 50 taps on the player's behalf from another origin (a sibling
	// subdomain is "same site", so SameSite=Lax would let it through).
	for _, h := range []map[string]string{
		with(form, "Origin", "http://evil.example"),
		with(form, "Origin", "http://evil."+strings.TrimPrefix(base, "http://")),
		with(form, "Sec-Fetch-Site", "same-site"),
		with(form, "Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"),
	} {
		if code, _, body := admReq(t, browser, "POST", base+"/api/tap", "count=50", h); code != 403 {
			t.Fatalf("cross-origin tap %v: %d %s", h, code, body)
		}
	}
	// The page itself taps (same origin), and an API client with a bearer
	// token is not a browser's ambient credential: both count.
	if code, _, body := admReq(t, browser, "POST", base+"/api/tap", "count=3", with(form, "Origin", base, "Sec-Fetch-Site", "same-origin")); code != 202 {
		t.Fatalf("same-origin tap: %d %s", code, body)
	}
	if code, _, body := admReq(t, nil, "POST", base+"/api/tap", `{"count":2}`, map[string]string{"Authorization": "Bearer " + me.Token, "Content-Type": "application/json", "Origin": "http://evil.example"}); code != 202 {
		t.Fatalf("bearer tap with a foreign Origin: %d %s", code, body)
	}
	waitTotals(t, base, map[*joined]int64{&me: 5})

	// Admin: a cross-site login form is refused; with a session, the CSRF
	// token counts only from the form body or the header, never the URL.
	if code, _, _ := admReq(t, browser, "POST", base+"/admin/login", url.Values{"token": {admToken}}.Encode(), with(form, "Origin", "http://evil.example")); code != 403 {
		t.Fatalf("cross-site admin login: %d", code)
	}
	if code, _, _ := admReq(t, browser, "POST", base+"/admin/login", url.Values{"token": {admToken}}.Encode(), with(form, "Origin", base)); code != 303 {
		t.Fatalf("admin login: %d", code)
	}
	_, _, page := admReq(t, browser, "GET", base+"/admin", "", nil)
	csrf := csrfToken(t, page)
	if code, _, body := admReq(t, browser, "POST", base+"/admin/reset?_csrf="+url.QueryEscape(csrf), "", with(form, "Origin", base)); code != 403 || !strings.Contains(body, "CSRF") {
		t.Fatalf("CSRF token from the query string: %d %s", code, body)
	}
	if code, _, body := admReq(t, browser, "POST", base+"/admin/reset", url.Values{"_csrf": {csrf}}.Encode(), with(form, "Origin", base)); code != 200 {
		t.Fatalf("reset with the CSRF token in the form: %d %s", code, body)
	}
}

// Every response carries the security headers; HSTS only over TLS.
func TestSecurityHeaders(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	base := m.URL()
	for _, path := range []string{"/", "/leaderboard", "/api/game-state", "/healthz", "/readyz", "/admin", "/no-such-page", "/static/app.css"} {
		code, hdr, _ := admReq(t, nil, "GET", base+path, "", nil)
		csp := hdr.Get("Content-Security-Policy")
		for _, d := range []string{"script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'", "style-src 'self'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s (%d): CSP %q lacks %s", path, code, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows inline code: %q", path, csp)
		}
		if hdr.Get("X-Content-Type-Options") != "nosniff" || hdr.Get("Referrer-Policy") == "" || hdr.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: %v", path, hdr)
		}
		if hdr.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS over plain HTTP", path)
		}
	}
}

// Only the body types the page and the API send are read; a slow body is
// 408, not "not valid JSON".
func TestBodyTypesAndSlowBodies(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	base := m.URL()
	a := join(t, base, "ann")
	auth := "Bearer " + a.Token
	for _, ct := range []string{"text/plain", "application/xml", "multipart/form-data; boundary=x", "text/html; charset=utf-8"} {
		code, _, body := admReq(t, nil, "POST", base+"/api/tap", `{"count":1}`, map[string]string{"Authorization": auth, "Content-Type": ct})
		if code != 415 || !strings.Contains(body, "application/json") {
			t.Errorf("tap as %s: %d %s", ct, code, body)
		}
	}
	for _, tc := range []struct{ ct, body string }{{"application/json", `{"count":2}`}, {"application/json; charset=utf-8", `{"count":1}`}, {"application/x-www-form-urlencoded", "count=3"}, {"", `{"count":4}`}} {
		if code, _, body := admReq(t, nil, "POST", base+"/api/tap", tc.body, map[string]string{"Authorization": auth, "Content-Type": tc.ct}); code != 202 {
			t.Errorf("tap as %q: %d %s", tc.ct, code, body)
		}
	}
	if code, _, body := admReq(t, nil, "POST", base+"/api/tap", `{"count":"ten"}`, map[string]string{"Authorization": auth, "Content-Type": "application/json"}); code != 400 || !strings.Contains(body, "count") {
		t.Errorf("tap with a string count: %d %s", code, body)
	}
	waitTotals(t, base, map[*joined]int64{&a: 10})
}

// The public state shows what a viewer needs: no session ids or join times.
func TestPublicStateHidesSessions(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := instance(t, r, k, nil)
	base := m.URL()
	a := join(t, base, "ann")
	tapN(t, base, a, 1)
	_, _, body := call(t, "GET", base+"/api/game-state", "", "", nil)
	var raw struct {
		Users []map[string]any `json:"users"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil || len(raw.Users) != 1 {
		t.Fatalf("%v %s", err, body)
	}
	for _, f := range []string{"sessionId", "joinedAt"} {
		if _, ok := raw.Users[0][f]; ok {
			t.Errorf("public state shows %s: %s", f, body)
		}
	}
	for _, f := range []string{"id", "username", "team", "tapCount"} {
		if _, ok := raw.Users[0][f]; !ok {
			t.Errorf("public state lacks %s: %s", f, body)
		}
	}
	if strings.Contains(body, a.User.SessionID) {
		t.Errorf("session id in the public state")
	}
	// The bearer scheme is case-insensitive (RFC 9110).
	for _, scheme := range []string{"bearer", "BEARER", "Bearer"} {
		if code, _, body := admReq(t, nil, "POST", base+"/api/tap", "", map[string]string{"Authorization": scheme + " " + a.Token}); code != 202 {
			t.Errorf("%s scheme: %d %s", scheme, code, body)
		}
	}
	// Names people have; tricks refused with the rule.
	for name, want := range map[string]int{"O'Brien": 201, "می\u200cخواهم": 201, "Ana 🎉": 201, "👩\u200d💻 Ana": 201, "❤️ Bo": 201,
		"аdmin": 400, "\u3164": 400, "a" + strings.Repeat("\u0301", 23): 400, "An\u200dn": 400} {
		code, _, body := call(t, "POST", base+"/api/join", "", fmt.Sprintf(`{"username":%q}`, name), nil)
		if code != want {
			t.Errorf("join %q: %d %s, want %d", name, code, body, want)
		}
		if want == 201 && !strings.Contains(body, `"username":"`+name+`"`) {
			t.Errorf("join %q: the name did not come back as written: %s", name, body)
		}
	}
	// Known metric labels exist from the start, at 0.
	_, _, metrics := admReq(t, nil, "GET", metricsOf(t, base), "", nil)
	for _, s := range []string{`tapwars_live_connections{transport="ws"}`, `tapwars_live_connections{transport="sse"}`,
		`tapwars_limit_refusals_total{limit="connections_per_address"}`, `tapwars_taps_rejected_total{reason="too_many"}`,
		`tapwars_taps_skipped_total{reason="unknown_player"}`} {
		if !strings.Contains(metrics, s+" ") {
			t.Errorf("/metrics lacks %s", s)
		}
	}
}

// A partition that cannot be applied is visible within seconds: /readyz,
// the metric and the log name it with the reason; it recovers by itself
// once the cause is gone, and no tap is lost.
func TestStuckPartitionIsReported(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	var logs syncBuf
	m := startApp(t, r, k, map[string]string{"LOG_LEVEL": "info"}, func(m *app.Main) { m.LogOutput = &logs })
	base := m.URL()
	a := join(t, base, "ann")
	tapN(t, base, a, 1)
	waitTotals(t, base, map[*joined]int64{&a: 1})
	// The total is no longer a number: every batch fails in Redis.
	rdb := r.Client()
	ctx := context.Background()
	if err := rdb.Set(ctx, "game:total:taps", "not a number", 0).Err(); err != nil {
		t.Fatal(err)
	}
	tapN(t, base, a, 4)
	testenv.Eventually(t, 20*time.Second, func() string {
		code, body := readyz(t, base)
		if c := body["consumer"]; code != 503 || !strings.Contains(c, "partition 0 not applied for") || !strings.Contains(c, "game:total:taps is not a whole number") {
			return fmt.Sprintf("readyz %d %v", code, body)
		}
		return ""
	})
	if since := metricValue(t, base, `tapwars_partition_failing_since_seconds{partition="0"}`); since < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("tapwars_partition_failing_since_seconds %v", since)
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "partition cannot be applied") || !strings.Contains(l, "not a whole number") {
			return "no error in the log naming the partition and the reason"
		}
		return ""
	})
	// Repaired (as an operator would: the total is blue + red).
	if err := rdb.Set(ctx, "game:total:taps", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitTotals(t, base, map[*joined]int64{&a: 5})
	testenv.Eventually(t, 10*time.Second, func() string {
		if code, body := readyz(t, base); code != 200 {
			return fmt.Sprintf("%d %v", code, body)
		}
		return ""
	})
	if since := metricValue(t, base, `tapwars_partition_failing_since_seconds{partition="0"}`); since != 0 {
		t.Errorf("tapwars_partition_failing_since_seconds after the repair: %v", since)
	}
}
