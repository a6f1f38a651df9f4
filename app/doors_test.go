package app_test

// The doors a stranger could leave ajar: Basic credentials taken for an API
// client, wrong guesses locking the operator out, one address using up the
// instance's joins.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapwars/tapwars/app"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// clientFrom is an HTTP client whose connections come from ip (any
// 127.0.0.0/8 address reaches a server on 127.0.0.1): another client
// address, as another NAT would be, without a proxy.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// basicAuth is what a browser sends by itself to every request, cross-site
// ones included, once a password-protected proxy in front asked for it.
var basicAuth = "Basic " + "dXNlcjpwYXNzd29yZA==" // user:password

// Only a Bearer token marks an API client: a cross-site form post that
// carries Basic credentials is refused like any other, and Basic credentials
// neither disable the admin's cookie session nor count as wrong tokens.
func TestBasicCredentialsAreNoBearerToken(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	base := m.URL()
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": basicAuth}

	// Login CSRF with Basic credentials attached: refused, no cookie.
	browser := browserClient()
	code, hdr, body := admReq(t, browser, "POST", base+"/join", "username=victim",
		overlay(form, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}))
	if code != 403 || hdr.Get("Set-Cookie") != "" || !strings.Contains(body, "cross-origin") {
		t.Fatalf("cross-site POST /join with Basic credentials: %d %q %s", code, hdr.Get("Set-Cookie"), body)
	}
	// The player's own page behind that proxy: joins and taps with its cookie.
	same := overlay(form, map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin"})
	if code, _, body := admReq(t, browser, "POST", base+"/join", "username=ann", same); code != 303 {
		t.Fatalf("same-origin POST /join with Basic credentials: %d %s", code, body)
	}
	if code, _, body := admReq(t, browser, "POST", base+"/api/tap", "count=3", same); code != 202 {
		t.Fatalf("the player's cookie with Basic credentials: %d %s", code, body)
	}

	// The operator behind the same proxy: the cookie session works with
	// Basic credentials on every request, reads and writes.
	op, page := adminSignIn(t, base)
	csrf := csrfToken(t, page)
	for i := range 15 {
		if code, _, body := admReq(t, op, "GET", base+"/admin/stats?format=json", "", map[string]string{"Authorization": basicAuth}); code != 200 {
			t.Fatalf("admin session with Basic credentials, request %d: %d %.200s", i, code, body)
		}
	}
	if code, _, body := admReq(t, op, "POST", base+"/admin/reset", url.Values{"_csrf": {csrf}}.Encode(), same); code != 200 {
		t.Fatalf("admin reset with Basic credentials: %d %.200s", code, body)
	}
	// Those 15 were no wrong tokens: the first wrong bearer token is a
	// plain 401, not the 429 of an address that guessed ten times.
	if code, _, body := admReq(t, nil, "GET", base+"/admin/stats", "", map[string]string{"Authorization": "Bearer " + strings.Repeat("x", 40)}); code != 401 {
		t.Fatalf("first wrong token after Basic requests: %d %s", code, body)
	}
}

// Strangers sharing the operator's address (a venue's NAT) guess wrong
// tokens until they get 429; the right token and the signed-in session
// still work.
func TestWrongGuessesNeverLockOutTheOperator(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	base := m.URL()
	op, page := adminSignIn(t, base)
	csrf := csrfToken(t, page)

	wrong := map[string]string{"Authorization": "Bearer guess-guess-guess-guess-guess-guess"}
	last := 0
	for range 12 {
		last, _, _ = admReq(t, nil, "GET", base+"/admin/stats", "", wrong)
	}
	if last != 429 {
		t.Fatalf("12th wrong token: %d, want 429", last)
	}
	formHdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
	if code, _, body := admReq(t, browserClient(), "POST", base+"/admin/login", url.Values{"token": {"guess"}}.Encode(), formHdr); code != 429 {
		t.Fatalf("wrong login while guessing is throttled: %d %.200s", code, body)
	}
	// And every way in for the operator still works.
	if code, _, body := admReq(t, nil, "GET", base+"/admin/stats?format=json", "", bearer); code != 200 {
		t.Fatalf("the right token after strangers' guesses: %d %.200s", code, body)
	}
	if code, _, body := admReq(t, browserClient(), "POST", base+"/admin/login", url.Values{"token": {admToken}}.Encode(), formHdr); code != 303 {
		t.Fatalf("login with the right token after strangers' guesses: %d %.200s", code, body)
	}
	if code, _, body := admReq(t, op, "POST", base+"/admin/reset", url.Values{"_csrf": {csrf}}.Encode(), formHdr); code != 303 {
		t.Fatalf("the signed-in operator after strangers' guesses: %d %.200s", code, body)
	}
}

// One address flooding joins is refused by its own budget before it uses
// up the instance's: meanwhile a room of 300 behind another address joins
// with the defaults.
func TestOneAddressCannotUseUpTheJoins(t *testing.T) {
	if testing.Short() {
		t.Skip("hundreds of joins")
	}
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	m := instance(t, r, k, nil) // the defaults
	base := m.URL()

	joinFrom := func(c *http.Client, n, workers int) (joined, refused int, msg string) {
		var ok, no atomic.Int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		next := atomic.Int64{}
		for range workers {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					code, _, body := admReq(t, c, "POST", base+"/api/join", `{}`, map[string]string{"Content-Type": "application/json"})
					switch code {
					case 201:
						ok.Add(1)
					case 429:
						no.Add(1)
						mu.Lock()
						msg = body
						mu.Unlock()
					default:
						t.Errorf("join: %d %s", code, body)
					}
				}
			})
		}
		wg.Wait()
		return int(ok.Load()), int(no.Load()), msg
	}
	flood := clientFrom("127.0.0.1")
	got, refused, msg := joinFrom(flood, 1200, 16)
	if refused == 0 || !strings.Contains(msg, "JOIN_RATE_LIMIT") {
		t.Fatalf("a flood of 1,200 joins from one address: %d joined, %d refused, last refusal %s", got, refused, msg)
	}
	t.Logf("flood from one address: %d joined, %d refused: %s", got, refused, msg)
	// The flooding address is refused now (its bucket refills at 10 a
	// second, so a few may pass on a slow machine); a room behind another
	// address joins.
	if got, refused, msg := joinFrom(flood, 20, 20); refused < 10 {
		t.Fatalf("the flooding address is not refused any more: %d of 20 joined: %s", got, msg)
	}
	room := clientFrom("127.0.0.2")
	if got, refused, msg := joinFrom(room, 300, 16); got != 300 {
		t.Fatalf("a room of 300 behind another address while one address floods: %d joined, %d refused: %s", got, refused, msg)
	}
	// And single players from yet other addresses.
	for i := 3; i < 13; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i)
		if code, _, body := admReq(t, clientFrom(ip), "POST", base+"/api/join", `{}`, map[string]string{"Content-Type": "application/json"}); code != 201 {
			t.Fatalf("a player from %s: %d %s", ip, code, body)
		}
	}
}

// dialFrom opens n TCP connections to addr from ip, sends nothing, and
// sorts them: refused (the server answered; the first answer is msg) or
// held (no answer). It reads for wait at a time until a round learns of no
// new refusal (at most 5 rounds): on a loaded machine the server may
// accept the last connections late. Refused ones are closed; the held ones
// are closed at the end of the test.
func dialFrom(t *testing.T, addr, ip string, n int, wait time.Duration) (held []net.Conn, refused int, msg string) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d from %s: %v", len(conns), ip, err)
		}
		conns = append(conns, c)
	}
	answers := make([]string, n)
	pending := make([]int, n)
	for i := range pending {
		pending[i] = i
	}
	for range 5 {
		deadline := time.Now().Add(wait)
		var wg sync.WaitGroup
		for _, i := range pending {
			wg.Go(func() {
				_ = conns[i].SetReadDeadline(deadline)
				b, _ := io.ReadAll(conns[i]) // until the server closes, or the deadline
				answers[i] += string(b)
			})
		}
		wg.Wait()
		still := pending[:0]
		for _, i := range pending {
			if answers[i] == "" {
				still = append(still, i)
			}
		}
		learned := len(still) < len(pending)
		pending = still
		if !learned {
			break
		}
	}
	for i, c := range conns {
		if strings.HasPrefix(answers[i], "HTTP/1.1 ") {
			refused++
			if msg == "" {
				msg = answers[i]
			}
			c.Close()
			continue
		}
		_ = c.SetReadDeadline(time.Time{})
		held = append(held, c)
	}
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	return held, refused, msg
}

// timedGet is a request from another address on a new connection, and how
// long its answer took (status 0: no answer, logged).
func timedGet(t *testing.T, ip, u string) (int, time.Duration) {
	t.Helper()
	c := clientFrom(ip)
	defer c.CloseIdleConnections()
	start := time.Now()
	res, err := c.Get(u)
	if err != nil {
		t.Logf("GET %s from %s: %v", u, ip, err)
		return 0, time.Since(start)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, time.Since(start)
}

// 5,000 idle connections from one address: the address holds at most
// MAX_TCP_CONNECTIONS_PER_IP of them (the rest are answered 429 at once),
// another address's requests are answered within a second meanwhile, and
// closing them gives the slots back. (HTTP_HEADER_TIMEOUT, which closes
// them by itself, is long here so that they stay for the measurement on a
// loaded machine; TestConnectionTimeouts checks it.)
func TestIdleConnectionsFromOneAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 connections")
	}
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := instance(t, r, k, map[string]string{"HTTP_HEADER_TIMEOUT": "2m"}) // else the defaults: 3,000 per address
	base := m.URL()

	start := time.Now()
	held, refused, msg := dialFrom(t, m.Addr(), "127.0.0.3", 5000, 2*time.Second)
	t.Logf("5,000 connections from one address in %v: %d held, %d refused", time.Since(start), len(held), refused)
	if len(held) > 3000 || refused < 2000 {
		t.Fatalf("one address holds %d idle connections (%d refused), want at most 3,000", len(held), refused)
	}
	if !strings.HasPrefix(msg, "HTTP/1.1 429") || !strings.Contains(msg, "MAX_TCP_CONNECTIONS_PER_IP") || !strings.Contains(msg, "Retry-After: 5") {
		t.Fatalf("the refusal: %q", msg)
	}
	// While they are held, another address is served at once.
	var worst time.Duration
	for i := range 10 {
		code, took := timedGet(t, "127.0.0.4", base+"/api/game-state")
		if code != 200 {
			t.Fatalf("request %d from another address: %d", i, code)
		}
		worst = max(worst, took)
	}
	if worst > time.Second {
		t.Fatalf("another address waited %v behind one address's idle connections", worst)
	}
	t.Logf("another address's slowest of 10 requests: %v", worst)
	if n := metricValue(t, base, "tapwars_open_connections"); n > 3000+10 {
		t.Fatalf("tapwars_open_connections %v", n)
	}
	if n := metricValue(t, base, `tapwars_limit_refusals_total{limit="tcp_connections_per_address"}`); n < 2000 {
		t.Fatalf("tcp_connections_per_address refusals %v", n)
	}
	// Connections that end give their slots back.
	for _, c := range held {
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		again, refused, _ := dialFrom(t, m.Addr(), "127.0.0.3", 10, 300*time.Millisecond)
		if len(again) == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after closing its connections the address holds %d of 10 new ones (%d refused)", len(again), refused)
		}
		for _, c := range again {
			c.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A connection that never sends its request is closed after
// HTTP_HEADER_TIMEOUT, an idle keep-alive connection after
// HTTP_IDLE_TIMEOUT; both free their address's slots.
func TestConnectionTimeouts(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := instance(t, r, k, map[string]string{"HTTP_HEADER_TIMEOUT": "1s", "HTTP_IDLE_TIMEOUT": "1s", "MAX_TCP_CONNECTIONS_PER_IP": "20"})
	start := time.Now()
	held, refused, _ := dialFrom(t, m.Addr(), "127.0.0.6", 21, 200*time.Millisecond)
	if len(held) != 20 || refused != 1 {
		t.Fatalf("21 from one address with a cap of 20: %d held, %d refused", len(held), refused)
	}
	for _, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("a connection that sends nothing, after %v: %v, want closed by the server", time.Since(start), err)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("silent connections closed only after %v (HTTP_HEADER_TIMEOUT 1s)", took)
	}
	// A keep-alive connection after its request: closed once idle for 1 s.
	c, err := net.Dial("tcp", m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("keep-alive request: %v %v", res, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	idle := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("an idle keep-alive connection: %v, want closed by the server", err)
	}
	if took := time.Since(idle); took < 900*time.Millisecond || took > 5*time.Second {
		t.Fatalf("an idle keep-alive connection closed after %v (HTTP_IDLE_TIMEOUT 1s)", took)
	}
	// The address's slots are free again.
	if again, refused, _ := dialFrom(t, m.Addr(), "127.0.0.6", 20, 200*time.Millisecond); len(again) != 20 {
		t.Fatalf("after the timeouts the address holds %d of 20 new connections (%d refused)", len(again), refused)
	}
}

// The instance's cap holds whatever the addresses, below the file limit;
// a trusted proxy's connections are not capped per address (the proxy
// carries many clients), only by the instance's cap.
func TestConnectionCapOfTheInstance(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := instance(t, r, k, map[string]string{"MAX_TCP_CONNECTIONS": "300", "MAX_TCP_CONNECTIONS_PER_IP": "100", "TRUSTED_PROXIES": "127.0.0.5"})
	base, addr := m.URL(), m.Addr()

	held, refused, msg := dialFrom(t, addr, "127.0.0.2", 101, time.Second)
	if len(held) != 100 || refused != 1 || !strings.Contains(msg, "MAX_TCP_CONNECTIONS_PER_IP") {
		t.Fatalf("101 from one address: %d held, %d refused: %q", len(held), refused, msg)
	}
	proxy, refused, msg := dialFrom(t, addr, "127.0.0.5", 150, time.Second)
	if len(proxy) != 150 {
		t.Fatalf("150 from a trusted proxy: %d held, %d refused: %q", len(proxy), refused, msg)
	}
	// 250 held plus the test's own keep-alive connections: the instance
	// fills up from a third address.
	_, refused, msg = dialFrom(t, addr, "127.0.0.3", 60, time.Second)
	if refused == 0 || !strings.HasPrefix(msg, "HTTP/1.1 503") || !strings.Contains(msg, "MAX_TCP_CONNECTIONS") {
		t.Fatalf("a full instance: %d refused: %q", refused, msg)
	}
	// Connections that end give their slots back.
	for _, c := range proxy {
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := timedGet(t, "127.0.0.4", base+"/healthz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the instance stays full after 150 connections closed")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Over the file limit the cap is lowered, with a warning.
	var logs syncBuf
	startApp(t, r, k, map[string]string{"MAX_TCP_CONNECTIONS": "100000000", "LOG_LEVEL": "warn"}, func(m *app.Main) { m.LogOutput = &logs })
	if s := logs.String(); !strings.Contains(s, "MAX_TCP_CONNECTIONS lowered under the file limit") || !strings.Contains(s, "file_limit=") {
		t.Fatalf("no warning for a cap over the file limit: %s", s)
	}
}

// /metrics is served on METRICS_ADDR only, never on the game's address;
// two instances cannot share one METRICS_ADDR, and the start says so.
func TestMetricsOnTheirOwnListener(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := instance(t, r, k, nil)
	base := m.URL()
	join(t, base, "ann")
	if code, _, body := call(t, "GET", base+"/metrics", "", "", nil); code != 404 || strings.Contains(body, "go_goroutines") {
		t.Fatalf("GET /metrics on the game's address: %d %.200s", code, body)
	}
	if m.MetricsURL() == "" || strings.HasPrefix(m.MetricsURL(), base) {
		t.Fatalf("metrics at %q, the game at %s", m.MetricsURL(), base)
	}
	code, _, body := call(t, "GET", m.MetricsURL()+"/metrics", "", "", nil)
	if code != 200 || !strings.Contains(body, "tapwars_http_requests_total{route=\"/api/join\",status=\"201\"}") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("GET /metrics on METRICS_ADDR: %d %.300s", code, body)
	}
	// The metrics listener serves nothing of the game.
	if code, _, _ := call(t, "GET", m.MetricsURL()+"/api/game-state", "", "", nil); code != 404 {
		t.Fatalf("the game on METRICS_ADDR: %d", code)
	}

	second := app.NewMain()
	vars := map[string]string{"ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir(), "REDIS_URL": r.URL(),
		"KAFKA_BROKERS": strings.Join(k.Addrs(), ","), "SESSION_SECRET": "test-secret-0123456789",
		"METRICS_ADDR": strings.TrimPrefix(m.MetricsURL(), "http://")}
	if err := second.Config.Parse(nil, func(k string) string { return vars[k] }, io.Discard); err != nil {
		t.Fatal(err)
	}
	second.LogOutput = io.Discard
	err := second.Run(t.Context())
	if err == nil {
		_ = second.Close()
		t.Fatal("a second instance started on the first's METRICS_ADDR")
	}
	if !strings.Contains(err.Error(), "METRICS_ADDR") || !strings.Contains(err.Error(), "give each instance on one host its own") {
		t.Fatalf("the start error does not say what to change: %v", err)
	}
}

// Logging out ends the admin session on every instance: a copy of the old
// cookie and its CSRF token work nowhere afterwards. An instance with
// another ADMIN_TOKEN never took the session.
func TestLogoutEndsTheAdminSessionEverywhere(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	a := admInstance(t, r, k, nil, nil)
	b := admInstance(t, r, k, nil, nil)
	other := admInstance(t, r, k, map[string]string{"ADMIN_TOKEN": "another-admin-token-0123456789abcdef"}, nil)

	formHdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	code, hdr, _ := admReq(t, browserClient(), "POST", a.URL()+"/admin/login", url.Values{"token": {admToken}}.Encode(), formHdr)
	ck, err := http.ParseSetCookie(hdr.Get("Set-Cookie"))
	if code != 303 || err != nil || ck.Name != "tapwars_admin" {
		t.Fatalf("login on A: %d %v %v", code, hdr, err)
	}
	withCookie := func(h map[string]string) map[string]string {
		return overlay(h, map[string]string{"Cookie": ck.Name + "=" + ck.Value})
	}
	_, _, page := admReq(t, nil, "GET", a.URL()+"/admin", "", withCookie(map[string]string{"Accept": "text/html"}))
	csrf := csrfToken(t, page)
	post := withCookie(overlay(formHdr, map[string]string{"X-CSRF-Token": csrf}))
	// The session works on both instances of the game.
	for name, m := range map[string]*app.Main{"A": a, "B": b} {
		if code, _, body := admReq(t, nil, "GET", m.URL()+"/admin/stats?format=json", "", withCookie(map[string]string{})); code != 200 {
			t.Fatalf("the session on %s: %d %.200s", name, code, body)
		}
		if code, _, body := admReq(t, nil, "POST", m.URL()+"/admin/reset", "", post); code != 200 {
			t.Fatalf("a reset with the session on %s: %d %.200s", name, code, body)
		}
	}
	// Not on the instance with another token.
	if code, _, _ := admReq(t, nil, "GET", other.URL()+"/admin/stats?format=json", "", withCookie(map[string]string{})); code != 401 {
		t.Fatalf("the session on an instance with another ADMIN_TOKEN: %d", code)
	}

	// Logout on A; the copy of the cookie and its CSRF token are dead on A and B.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	code, hdr, _ = admReq(t, noRedirect, "POST", a.URL()+"/admin/logout", "", post)
	if code != 303 || !strings.Contains(hdr.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout: %d %v", code, hdr)
	}
	for name, m := range map[string]*app.Main{"A": a, "B": b} {
		if code, _, _ := admReq(t, nil, "GET", m.URL()+"/admin/stats?format=json", "", withCookie(map[string]string{})); code != 401 {
			t.Fatalf("the logged-out session still reads on %s: %d", name, code)
		}
		if code, _, _ := admReq(t, nil, "POST", m.URL()+"/admin/reset", "", post); code != 401 {
			t.Fatalf("the logged-out session still resets on %s: %d", name, code)
		}
		if code, _, body := admReq(t, nil, "GET", m.URL()+"/admin", "", withCookie(map[string]string{"Accept": "text/html"})); code != 200 || !strings.Contains(body, `action="/admin/login"`) {
			t.Fatalf("the admin page with the logged-out session on %s: %d %.200s", name, code, body)
		}
	}
	// Signing in again works, on B this time, and reaches A.
	op, _ := adminSignIn(t, b.URL())
	if code, _, _ := admReq(t, op, "GET", a.URL()+"/admin/stats?format=json", "", nil); code != 200 {
		t.Fatalf("a new session from B on A: %d", code)
	}
}
