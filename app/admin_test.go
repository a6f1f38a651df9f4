package app_test

// Tests of the admin page (auth, reset, export/import, kick) and of every
// safety limit, against real parts: redis-server, the kfake broker over TCP
// and the whole app.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
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
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/stream"
)

const admToken = "admin-token-for-tests-0123456789"

// admInstance runs an instance with ADMIN_TOKEN set (unless env overrides
// it) and lets tune adjust Main before Run.
func admInstance(t *testing.T, r *testenv.Redis, k testenv.Broker, env map[string]string, tune func(*app.Main)) *app.Main {
	t.Helper()
	return startApp(t, r, k, overlay(map[string]string{"ADMIN_TOKEN": admToken}, env), tune)
}

// admReq does a request with optional headers and returns status, headers and body.
func admReq(t *testing.T, c *http.Client, method, u, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

var bearer = map[string]string{"Authorization": "Bearer " + admToken}

// admin calls an admin endpoint with the bearer token and decodes JSON into out.
func admin(t *testing.T, method, u, body string, out any) (int, string) {
	t.Helper()
	code, _, b := admReq(t, nil, method, u, body, bearer)
	if out != nil && code == 200 {
		if err := json.Unmarshal([]byte(b), out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, u, err, b)
		}
	}
	return code, b
}

func tapN(t *testing.T, base string, j joined, n int) {
	t.Helper()
	if code, _, body := call(t, "POST", base+"/api/tap", j.Token, fmt.Sprintf(`{"count":%d}`, n), nil); code != 202 {
		t.Fatalf("tap %d for %s: %d %s", n, j.User.Username, code, body)
	}
}

// waitTotals waits until the game state shows exactly these taps per player
// (and their sums per team and in total), and fails at once on more.
func waitTotals(t *testing.T, base string, want map[*joined]int64) {
	t.Helper()
	var total int64
	team := map[game.Team]int64{}
	for j, n := range want {
		total += n
		team[j.User.Team] += n
	}
	testenv.Eventually(t, 20*time.Second, func() string {
		gs := state(t, base).GameState
		if gs.TotalTaps > total {
			t.Fatalf("total %d, want %d: counted taps that must not count", gs.TotalTaps, total)
		}
		if gs.TotalTaps != total || gs.BlueScore != team[game.Blue] || gs.RedScore != team[game.Red] {
			return fmt.Sprintf("state %+v, want total %d, teams %v", gs, total, team)
		}
		return ""
	})
	for j, n := range want {
		var u joined
		if code, _, body := call(t, "POST", base+"/api/join", j.Token, "", &u); code != 200 || u.User.TapCount != n {
			t.Fatalf("%s: %d %s, want %d taps", j.User.Username, code, body, n)
		}
	}
}

// gate holds the consumer before it applies a batch while paused.
type gate struct {
	mu sync.Mutex
	ch chan struct{}
}

func (g *gate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch == nil {
		g.ch = make(chan struct{})
	}
}

func (g *gate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch != nil {
		close(g.ch)
		g.ch = nil
	}
}

func (g *gate) wait(game.Batch) {
	g.mu.Lock()
	ch := g.ch
	g.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func gated(g *gate) func(*app.Main) {
	return func(m *app.Main) { m.ConsumerOptions.BeforeApply = g.wait }
}

// forgetful hides the offsets stored in Redis from the consumer's setup, so
// it starts from the oldest record: a replay of the whole topic.
type forgetful struct{ *store.Store }

func (forgetful) Offsets(context.Context, string, []int32) (map[int32]int64, error) {
	return map[int32]int64{}, nil
}

// A reset while taps wait in Kafka: neither a paused consumer, nor a stopped
// and restarted one, nor a restart of the app, nor a replay of the topic,
// nor a rebuild from the topic counts a tap acknowledged before the reset;
// taps after it count from zero.
func TestAdminResetAgainstTapsWaitingInKafka(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 3, stream.Topic)
	var g1 gate
	m := admInstance(t, r, k, nil, gated(&g1))
	t.Cleanup(g1.resume) // before m closes
	base := m.URL()
	a, b := join(t, base, "ann"), join(t, base, "ben")
	tapN(t, base, a, 5)
	tapN(t, base, b, 3)
	waitTotals(t, base, map[*joined]int64{&a: 5, &b: 3})

	// 1. The consumer is stuck before applying; taps are acknowledged and wait in Kafka.
	g1.pause()
	for range 10 {
		tapN(t, base, a, 2)
		tapN(t, base, b, 1)
	}
	time.Sleep(300 * time.Millisecond)
	if gs := state(t, base).GameState; gs.TotalTaps != 8 {
		t.Fatalf("the paused consumer applied taps: %+v", gs)
	}
	skippedBefore := metricValue(t, base, `tapwars_taps_skipped_total{reason="old_round"}`)
	var rr struct {
		Round       int64            `json:"round"`
		RoundStarts map[string]int64 `json:"roundStarts"`
	}
	if code, body := admin(t, "POST", base+"/admin/reset", "", &rr); code != 200 || rr.Round != 1 {
		t.Fatalf("reset: %d %s", code, body)
	}
	var ends int64
	for _, o := range rr.RoundStarts {
		ends += o
	}
	if ends != 24 { // 2 joins + 2 + 20 taps written so far
		t.Fatalf("round starts %v do not cover the 24 records in the topic", rr.RoundStarts)
	}
	if gs := state(t, base).GameState; gs.TotalTaps != 0 || gs.BlueScore != 0 || gs.RedScore != 0 || gs.Round != 1 || gs.ActiveUsers != 2 {
		t.Fatalf("right after the reset: %+v", gs)
	}
	g1.resume()
	tapN(t, base, a, 4)
	waitTotals(t, base, map[*joined]int64{&a: 4, &b: 0})
	testenv.Eventually(t, 10*time.Second, func() string {
		if d := metricValue(t, base, `tapwars_taps_skipped_total{reason="old_round"}`) - skippedBefore; d != 30 {
			return fmt.Sprintf("%v old-round taps skipped, want 30", d)
		}
		return ""
	})

	// 2. The consumer is stopped (the app is down) while taps are written,
	// then comes back paused; the reset happens before it applies anything.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	p, err := stream.NewProducer(stream.Config{Brokers: k.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		for _, j := range []joined{a, b} {
			ev := game.TapEvent{ID: fmt.Sprintf("offline-%d-%s", i, j.User.ID), UserID: j.User.ID, Username: j.User.Username, Team: j.User.Team, Count: 3}
			if err := p.Send(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = p.Close()
	var g2 gate
	g2.pause()
	m = admInstance(t, r, k, nil, gated(&g2))
	t.Cleanup(g2.resume)
	base = m.URL()
	if code, body := admin(t, "POST", base+"/admin/reset", "", &rr); code != 200 || rr.Round != 2 {
		t.Fatalf("second reset: %d %s", code, body)
	}
	g2.resume()
	time.Sleep(500 * time.Millisecond)
	waitTotals(t, base, map[*joined]int64{&a: 0, &b: 0})
	tapN(t, base, a, 7)
	tapN(t, base, b, 2)
	waitTotals(t, base, map[*joined]int64{&a: 7, &b: 2})

	// 3. A restart keeps the round and the counts.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = admInstance(t, r, k, nil, nil)
	base = m.URL()
	if gs := state(t, base).GameState; gs.Round != 2 {
		t.Fatalf("round after restart: %+v", gs)
	}
	tapN(t, base, b, 1)
	waitTotals(t, base, map[*joined]int64{&a: 7, &b: 3})

	// 4. A replay of the whole topic by another consumer group changes nothing.
	hw, err := stream.NewWatermarks(stream.Config{Brokers: k.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer hw.Close()
	endOffsets, err := hw.HighWatermarks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	reached := map[int32]int64{}
	c, err := stream.NewConsumer(stream.Config{Brokers: k.Addrs(), Group: "replay"}, forgetful{m.Store},
		m.Log, stream.ConsumerOptions{MaxBatch: 7, BeforeApply: func(b game.Batch) {
			mu.Lock()
			reached[b.Partition] = max(reached[b.Partition], b.Next)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	testenv.Eventually(t, 30*time.Second, func() string {
		mu.Lock()
		defer mu.Unlock()
		for p, end := range endOffsets {
			if end > 0 && reached[p] < end {
				return fmt.Sprintf("replay at %v, end %v", reached, endOffsets)
			}
		}
		return ""
	})
	cancel()
	_ = c.Close()
	<-done
	waitTotals(t, base, map[*joined]int64{&a: 7, &b: 3})

	// 5. A rebuild from the topic (applied offsets and counts lost, round
	// starts kept) counts exactly this round's taps again.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	rdb := r.Client()
	bg := context.Background()
	if err := rdb.Del(bg, store.KeyOffsets, store.KeyBlueScore, store.KeyRedScore, store.KeyTotalTaps, store.KeyLeaderboard).Err(); err != nil {
		t.Fatal(err)
	}
	m = admInstance(t, r, k, nil, nil)
	base = m.URL()
	waitTotals(t, base, map[*joined]int64{&a: 7, &b: 3})
	time.Sleep(300 * time.Millisecond)
	waitTotals(t, base, map[*joined]int64{&a: 7, &b: 3})
	if gs := state(t, base).GameState; gs.Round != 2 {
		t.Fatalf("round after rebuild: %+v", gs)
	}
}

// Every page sees the zero at once: a live stream gets the reset's state.
func TestAdminResetReachesLivePages(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	m1 := admInstance(t, r, k, nil, nil)
	m2 := admInstance(t, r, k, nil, nil) // another instance's page
	a := join(t, m1.URL(), "ann")
	tapN(t, m1.URL(), a, 9)
	waitTotals(t, m1.URL(), map[*joined]int64{&a: 9})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := sseEvents(t, ctx, m2.URL()+"/events?format=json")
	start := time.Now()
	if code, body := admin(t, "POST", m1.URL()+"/admin/reset", "", nil); code != 200 {
		t.Fatalf("reset: %d %s", code, body)
	}
	for {
		select {
		case s := <-events:
			if s.GameState.Round == 1 {
				if s.GameState.TotalTaps != 0 || len(s.Leaderboard) != 0 {
					t.Fatalf("new round's first state: %+v", s)
				}
				t.Logf("the other instance's page saw the reset after %v", time.Since(start))
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no state of the new round on the other instance's stream")
		}
	}
}

// browserClient keeps cookies and does not follow redirects, as the tests
// of a browser's requests need.
func browserClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// csrfToken is the CSRF token of an admin page's forms.
func csrfToken(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field on the admin page: %.300s", page)
	}
	return m[1]
}

// adminSignIn signs a browser in with the admin token and returns it with
// the admin page (HTML) it then sees.
func adminSignIn(t *testing.T, base string) (browser *http.Client, page string) {
	t.Helper()
	browser = browserClient()
	if code, _, body := admReq(t, browser, "POST", base+"/admin/login", url.Values{"token": {admToken}}.Encode(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); code != http.StatusSeeOther {
		t.Fatalf("admin login: %d %.200s", code, body)
	}
	_, _, page = admReq(t, browser, "GET", base+"/admin", "", map[string]string{"Accept": "text/html"})
	return browser, page
}

func TestAdminAuth(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	base := m.URL()

	// Without credentials: the login form for the page, 401 for everything else.
	code, hdr, body := admReq(t, nil, "GET", base+"/admin", "", nil)
	if code != 200 || !strings.Contains(body, `action="/admin/login"`) || hdr.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("login page: %d %v %.200s", code, hdr, body)
	}
	for _, rt := range []struct{ method, path string }{{"GET", "/admin/stats"}, {"GET", "/admin/export"}, {"POST", "/admin/reset"},
		{"POST", "/admin/import"}, {"POST", "/admin/kick/x"}, {"GET", "/admin/reset"}} {
		if code, _, body := admReq(t, nil, rt.method, base+rt.path, "", nil); code != 401 || !strings.Contains(body, "ADMIN_TOKEN") {
			t.Errorf("%s %s without credentials: %d %s", rt.method, rt.path, code, body)
		}
		if code, _, _ := admReq(t, nil, rt.method, base+rt.path, "", map[string]string{"Authorization": "Bearer " + admToken + "x"}); code != 401 {
			t.Errorf("%s %s with a wrong token: %d", rt.method, rt.path, code)
		}
	}
	// A player's token is not an admin token.
	p := join(t, base, "ann")
	if code, _, _ := admReq(t, nil, "GET", base+"/admin/stats", "", map[string]string{"Authorization": "Bearer " + p.Token}); code != 401 {
		t.Fatalf("player token on admin: %d", code)
	}
	// Bearer works.
	if code, _, body := admReq(t, nil, "GET", base+"/admin/stats?format=json", "", bearer); code != 200 || !strings.Contains(body, `"tapsPerSecond"`) {
		t.Fatalf("stats with bearer: %d %.200s", code, body)
	}

	// Browser: log in with the form; the cookie is HttpOnly, SameSite=Strict, Path=/admin.
	browser := browserClient()
	form := func(vals url.Values) string { return vals.Encode() }
	formHdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
	if code, _, body := admReq(t, browser, "POST", base+"/admin/login", form(url.Values{"token": {"wrong"}}), formHdr); code != 401 || !strings.Contains(body, "not the admin token") {
		t.Fatalf("wrong login: %d %.200s", code, body)
	}
	code, hdr, _ = admReq(t, browser, "POST", base+"/admin/login", form(url.Values{"token": {admToken}}), formHdr)
	ck := hdr.Get("Set-Cookie")
	if code != 303 || !strings.Contains(ck, "tapwars_admin=") || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Strict") ||
		!strings.Contains(ck, "Path=/admin") || strings.Contains(ck, "Secure") || strings.Contains(ck, admToken) {
		t.Fatalf("login: %d %q", code, ck)
	}
	code, _, page := admReq(t, browser, "GET", base+"/admin", "", map[string]string{"Accept": "text/html"})
	if code != 200 || !strings.Contains(page, `id="admin-stats"`) || !strings.Contains(page, `hx-trigger="every 2s"`) || !strings.Contains(page, "<svg") {
		t.Fatalf("dashboard: %d %.300s", code, page)
	}
	csrf := csrfField.FindStringSubmatch(page)
	if csrf == nil || !strings.Contains(page, `X-CSRF-Token&#34;:&#34;`+csrf[1]) {
		t.Fatalf("no CSRF token in the page")
	}
	// A POST with the cookie needs the CSRF token.
	if code, _, body := admReq(t, browser, "POST", base+"/admin/reset", "", formHdr); code != 403 || !strings.Contains(body, "CSRF") {
		t.Fatalf("reset without CSRF: %d %.200s", code, body)
	}
	if code, _, _ := admReq(t, browser, "POST", base+"/admin/reset", form(url.Values{"_csrf": {csrf[1] + "x"}}), formHdr); code != 403 {
		t.Fatalf("reset with a wrong CSRF token: %d", code)
	}
	crossSite := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site"}
	if code, _, _ := admReq(t, browser, "POST", base+"/admin/reset", form(url.Values{"_csrf": {csrf[1]}}), crossSite); code != 403 {
		t.Fatalf("cross-site reset: %d", code)
	}
	if code, _, body := admReq(t, browser, "GET", base+"/admin/reset", "", nil); code != 200 || !strings.Contains(body, "Start round 1?") {
		t.Fatalf("confirm step: %d %.200s", code, body)
	}
	code, hdr, _ = admReq(t, browser, "POST", base+"/admin/reset", form(url.Values{"_csrf": {csrf[1]}}), formHdr)
	if code != 303 || hdr.Get("Location") != "/admin?done=reset" {
		t.Fatalf("reset with CSRF: %d %v", code, hdr)
	}
	// htmx sends the token as a header.
	if code, _, _ := admReq(t, browser, "POST", base+"/admin/reset", "", map[string]string{"X-CSRF-Token": csrf[1], "HX-Request": "true"}); code != 200 {
		t.Fatalf("reset with the CSRF header: %d", code)
	}
	if gs := state(t, base).GameState; gs.Round != 2 {
		t.Fatalf("round %d after two resets", gs.Round)
	}
	// Logging out ends the session.
	if code, _, _ := admReq(t, browser, "POST", base+"/admin/logout", form(url.Values{"_csrf": {csrf[1]}}), formHdr); code != 303 {
		t.Fatalf("logout: %d", code)
	}
	if code, _, _ := admReq(t, browser, "GET", base+"/admin/stats", "", nil); code != 401 {
		t.Fatalf("stats after logout: %d", code)
	}
	// X-Forwarded-Proto of an untrusted peer does not make it Secure (see
	// TestTokensAndSessionCookie for a trusted proxy).
	_, hdr, _ = admReq(t, browser, "POST", base+"/admin/login", form(url.Values{"token": {admToken}}),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-Proto": "https"})
	if ck := hdr.Get("Set-Cookie"); ck == "" || strings.Contains(ck, "Secure") {
		t.Fatalf("admin cookie with an untrusted X-Forwarded-Proto: %q", ck)
	}
	// Guessing is limited: 10 wrong tokens a minute per address, then 429.
	var last int
	for range 12 {
		last, _, _ = admReq(t, nil, "GET", base+"/admin/stats", "", map[string]string{"Authorization": "Bearer guess-guess-guess-guess"})
	}
	if last != 429 {
		t.Fatalf("12th wrong token: %d, want 429", last)
	}
}

// Without ADMIN_TOKEN a token is generated into DATA_DIR/admin.token and
// logged once, with the admin URL; the next start reads it and does not log it.
func TestAdminTokenGenerated(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	dir := t.TempDir()
	start := func() (*app.Main, string) {
		var logs syncBuf
		m := admInstance(t, r, k, map[string]string{"ADMIN_TOKEN": "", "DATA_DIR": dir, "LOG_LEVEL": "info"}, func(m *app.Main) { m.LogOutput = &logs })
		return m, logs.String()
	}
	m, logs := start()
	raw, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(raw))
	if len(tok) != 64 {
		t.Fatalf("generated token %q", tok)
	}
	if st, _ := os.Stat(filepath.Join(dir, "admin.token")); st.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token mode %v", st.Mode())
	}
	// The log says where the token is, never the token.
	if strings.Contains(logs, tok) || !strings.Contains(logs, filepath.Join(dir, "admin.token")) || !strings.Contains(logs, m.URL()+"/admin") {
		t.Fatalf("the log must name the admin URL and the token's file, never the token:\n%s", logs)
	}
	if code, _, _ := admReq(t, nil, "GET", m.URL()+"/admin/stats", "", map[string]string{"Authorization": "Bearer " + tok}); code != 200 {
		t.Fatalf("generated token refused: %d", code)
	}
	_ = m.Close()
	m, logs = start()
	if strings.Contains(logs, tok) {
		t.Fatalf("token logged again on the second start:\n%s", logs)
	}
	if code, _, _ := admReq(t, nil, "GET", m.URL()+"/admin/stats", "", map[string]string{"Authorization": "Bearer " + tok}); code != 200 {
		t.Fatalf("kept token refused after restart: %d", code)
	}
}

func TestAdminExportImport(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	var g gate
	m := admInstance(t, r, k, nil, gated(&g))
	t.Cleanup(g.resume)
	base := m.URL()
	a, b := join(t, base, "ann"), join(t, base, "Zoë")
	tapN(t, base, a, 6)
	tapN(t, base, b, 4)
	waitTotals(t, base, map[*joined]int64{&a: 6, &b: 4})

	code, hdr, raw := admReq(t, nil, "GET", base+"/admin/export", "", bearer)
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Disposition"), `attachment; filename="tapwars-round0-`) {
		t.Fatalf("export: %d %v", code, hdr)
	}
	var ex store.Export
	if err := json.Unmarshal([]byte(raw), &ex); err != nil {
		t.Fatal(err)
	}
	if ex.Format != "tapwars-export" || len(ex.Players) != 2 || ex.TotalTaps != 10 || ex.Round != 0 || len(ex.Offsets) == 0 {
		t.Fatalf("export: %+v", ex)
	}

	// The game goes on; some taps wait in Kafka when the export is restored.
	tapN(t, base, a, 20)
	waitTotals(t, base, map[*joined]int64{&a: 26, &b: 4})
	g.pause()
	tapN(t, base, b, 30)
	var ir struct {
		Round     int64 `json:"round"`
		Players   int   `json:"players"`
		TotalTaps int64 `json:"totalTaps"`
	}
	// Logged at once; the held consumer applies it later.
	if code, body := admin(t, "POST", base+"/admin/import", raw, nil); code != 202 || json.Unmarshal([]byte(body), &ir) != nil || ir.Round != 1 || ir.Players != 2 || ir.TotalTaps != 10 {
		t.Fatalf("import: %d %s", code, body)
	}
	g.resume()
	time.Sleep(300 * time.Millisecond)
	waitTotals(t, base, map[*joined]int64{&a: 6, &b: 4}) // the 30 taps waiting in Kafka do not count on top
	tapN(t, base, b, 1)
	waitTotals(t, base, map[*joined]int64{&a: 6, &b: 5}) // taps after the import do

	// Bad files are refused with 400 and a clear message; nothing changes.
	_, _, before := admReq(t, nil, "GET", base+"/admin/export", "", bearer)
	strip := regexp.MustCompile(`"exportedAt": \d+`)
	edit := func(f func(e *store.Export)) string {
		var e store.Export
		_ = json.Unmarshal([]byte(raw), &e)
		f(&e)
		b, _ := json.Marshal(e)
		return string(b)
	}
	for _, tc := range []struct{ body, want string }{
		{"", "empty"},
		{"{", "not valid JSON"},
		{`{"format":"tapwars-export","version":1,"players":"x"}`, "players"},
		{edit(func(e *store.Export) { e.BlueScore++; e.TotalTaps++ }), "add up to"},
		{edit(func(e *store.Export) { e.TotalTaps++ }), "totalTaps is"},
		{edit(func(e *store.Export) { e.Players[0].Username = "\u3164" }), "username"},
		{edit(func(e *store.Export) { e.Players[0].Team = "green" }), "team must be"},
		{edit(func(e *store.Export) { e.Players[1].TapCount = -4; e.TotalTaps -= 8 }), "from 0 to 9007199254740992"},
		{edit(func(e *store.Export) { e.Players[1].TapCount = 1 << 62 }), "from 0 to 9007199254740992"},
	} {
		code, _, body := admReq(t, nil, "POST", base+"/admin/import", tc.body, bearer)
		if code != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("import of %.60s: %d %s, want 400 with %q", tc.body, code, body, tc.want)
		}
	}
	_, _, after := admReq(t, nil, "GET", base+"/admin/export", "", bearer)
	if strip.ReplaceAllString(before, "") != strip.ReplaceAllString(after, "") {
		t.Fatalf("a refused import changed the state:\n%s\n%s", before, after)
	}

	// The browser's form: multipart upload with the CSRF token and the confirmation box.
	browser, page := adminSignIn(t, base)
	csrf := csrfToken(t, page)
	upload := func(confirm bool, content string) (int, string) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		_ = w.WriteField("_csrf", csrf)
		if confirm {
			_ = w.WriteField("confirm", "yes")
		}
		fw, _ := w.CreateFormFile("file", "export.json")
		_, _ = fw.Write([]byte(content))
		_ = w.Close()
		code, _, body := admReq(t, browser, "POST", base+"/admin/import", buf.String(), map[string]string{"Content-Type": w.FormDataContentType(), "Accept": "text/html"})
		return code, body
	}
	if code, body := upload(false, raw); code != 400 || !strings.Contains(body, "Tick the box") {
		t.Fatalf("upload without confirmation: %d %.300s", code, body)
	}
	if code, body := upload(true, "[1,2]"); code != 400 || !strings.Contains(body, "must be a JSON object") || !strings.Contains(body, `role="alert"`) {
		t.Fatalf("upload of a bad file: %d %.300s", code, body)
	}
	if code, _ := upload(true, raw); code != 303 {
		t.Fatalf("upload: %d", code)
	}
	waitTotals(t, base, map[*joined]int64{&a: 6, &b: 4})
	if gs := state(t, base).GameState; gs.Round != 2 {
		t.Fatalf("round after two imports: %d", gs.Round)
	}
	// An import larger than 64 MiB is refused before it is read.
	conn, err := net.Dial("tcp", m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /admin/import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", admToken, 65<<20)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 413 {
		t.Fatalf("huge import: %d", res.StatusCode)
	}
}

// A kicked player's token stops working at once on every instance; their
// taps leave the scores, taps of theirs waiting in Kafka never count.
func TestAdminKick(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	var g gate // holds both instances' consumers
	m1 := admInstance(t, r, k, nil, gated(&g))
	m2 := admInstance(t, r, k, nil, gated(&g))
	t.Cleanup(g.resume)
	a, b := join(t, m1.URL(), "ann"), join(t, m1.URL(), "ben")
	tapN(t, m1.URL(), a, 10)
	tapN(t, m2.URL(), a, 5) // m2 has ann cached now
	tapN(t, m1.URL(), b, 2)
	waitTotals(t, m1.URL(), map[*joined]int64{&a: 15, &b: 2})

	// Some of ann's taps wait in Kafka (m1's consumer is held) when she is kicked.
	g.pause()
	tapN(t, m2.URL(), a, 7)
	var kr struct {
		Kicked      string `json:"kicked"`
		RemovedTaps int64  `json:"removedTaps"`
		Pending     bool   `json:"pending"`
	}
	// The kick is logged and in force at once; the held consumer applies it later.
	if code, body := admin(t, "POST", m1.URL()+"/admin/kick/"+a.User.ID, "", &kr); code != 202 || !strings.Contains(body, `"pending":true`) {
		t.Fatalf("kick: %d %s", code, body)
	}
	if code, _, body := call(t, "POST", m1.URL()+"/api/tap", a.Token, "", nil); code != 401 || !strings.Contains(body, "removed") {
		t.Fatalf("kicked token on the kicking instance: %d %s", code, body)
	}
	start := time.Now()
	testenv.Eventually(t, 2*time.Second, func() string {
		if code, _, body := call(t, "POST", m2.URL()+"/api/tap", a.Token, "", nil); code != 401 {
			return fmt.Sprintf("kicked token on the other instance: %d %s", code, body)
		}
		return ""
	})
	t.Logf("the other instance refused the kicked token after %v", time.Since(start))
	// Pages no longer know the kicked player either.
	if code, _, body := admReq(t, nil, "GET", m2.URL()+"/", "", map[string]string{"Cookie": "tapwars_session=" + a.Token}); code != 200 || strings.Contains(body, `data-me-id="`+a.User.ID) {
		t.Fatalf("game page with a kicked cookie: %d", code)
	}
	g.resume()
	time.Sleep(500 * time.Millisecond)
	waitTotals(t, m1.URL(), map[*joined]int64{&b: 2})
	// The kick removed every tap of ann logged before it: the 15 applied
	// and the 7 that waited in Kafka.
	testenv.Eventually(t, 5*time.Second, func() string {
		rec, ok, err := m1.Store.Kicked(context.Background(), a.User.ID)
		if err != nil || !ok || rec.RemovedTaps != 22 {
			return fmt.Sprintf("kick record %+v %v %v", rec, ok, err)
		}
		return ""
	})
	s := state(t, m1.URL())
	for _, e := range s.Leaderboard {
		if e.ID == a.User.ID {
			t.Fatalf("kicked player on the leaderboard: %+v", s.Leaderboard)
		}
	}
	if code, body := admin(t, "POST", m2.URL()+"/admin/kick/"+a.User.ID, "", nil); code != 409 {
		t.Fatalf("second kick: %d %s", code, body)
	}
	if code, body := admin(t, "POST", m2.URL()+"/admin/kick/nobody", "", nil); code != 404 {
		t.Fatalf("kick of nobody: %d %s", code, body)
	}
	// The kick survives a restart of an instance.
	_ = m2.Close()
	m3 := admInstance(t, r, k, nil, nil)
	if code, _, _ := call(t, "POST", m3.URL()+"/api/tap", a.Token, "", nil); code != 401 {
		t.Fatalf("kicked token after restart: %d", code)
	}
}

// The admin page's live numbers: totals, tap rate, lag per partition,
// connections per transport on this instance.
func TestAdminStats(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 3, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	base := m.URL()
	a := join(t, base, "ann")
	for range 5 {
		tapN(t, base, a, 10)
	}
	waitTotals(t, base, map[*joined]int64{&a: 50})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sseEvents(t, ctx, base+"/events?format=json")
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws?format=json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	var st struct {
		TotalTaps  int64   `json:"totalTaps"`
		Rate       []int64 `json:"tapsPerSecond"`
		WS, SSE    int
		BlueOnline int64 `json:"blueOnline"`
		RedOnline  int64 `json:"redOnline"`
		Partitions []struct {
			Partition    int32
			End, Applied int64
			Lag          int64 `json:"lag"`
			Owned        bool  `json:"owned"`
		} `json:"partitions"`
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		if code, body := admin(t, "GET", base+"/admin/stats?format=json", "", &st); code != 200 {
			return body
		}
		var rate int64
		for _, n := range st.Rate {
			rate += n
		}
		if st.TotalTaps != 50 || rate != 50 || len(st.Rate) != 900 || st.WS != 1 || st.SSE != 1 || st.BlueOnline+st.RedOnline != 1 || len(st.Partitions) != 3 {
			return fmt.Sprintf("%+v (rate sum %d)", st, rate)
		}
		for _, p := range st.Partitions {
			if p.Lag != 0 || !p.Owned || p.End < 0 {
				return fmt.Sprintf("partition %+v", p)
			}
		}
		return ""
	})
	code, _, html := admReq(t, nil, "GET", base+"/admin/stats", "", bearer)
	if code != 200 || !strings.Contains(html, "<svg") || !strings.Contains(html, "Consumer lag") || !strings.Contains(html, "1 / 1") {
		t.Fatalf("stats fragment: %d %.500s", code, html)
	}
}

// ---------------------------------------------------------------- limits

func TestTapRateLimit(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, map[string]string{"TAP_RATE_LIMIT": "5"}, nil) // 5/s, burst 50
	base := m.URL()
	a, b := join(t, base, "ann"), join(t, base, "ben")
	tapN(t, base, a, 50) // the burst
	code, hdr, body := call(t, "POST", base+"/api/tap", a.Token, `{"count":5}`, nil)
	if code != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "at most 5 per second") {
		t.Fatalf("over the rate: %d %v %s", code, hdr, body)
	}
	if secs, _ := strconv.Atoi(hdr.Get("Retry-After")); secs < 1 || secs > 2 {
		t.Fatalf("Retry-After %q", hdr.Get("Retry-After"))
	}
	tapN(t, base, b, 1) // per player
	time.Sleep(1100 * time.Millisecond)
	tapN(t, base, a, 5) // refilled
	waitTotals(t, base, map[*joined]int64{&a: 55, &b: 1})
	// 0 disables.
	m2 := admInstance(t, r, k, map[string]string{"TAP_RATE_LIMIT": "0"}, nil)
	for range 5 {
		tapN(t, m2.URL(), b, 50)
	}
}

func TestJoinRateLimit(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, map[string]string{"JOIN_RATE_LIMIT": "3"}, nil)
	base := m.URL()
	var first joined
	for i := range 3 {
		j := join(t, base, fmt.Sprintf("p%d", i))
		if i == 0 {
			first = j
		}
	}
	code, hdr, body := call(t, "POST", base+"/api/join", "", `{"username":"p4"}`, nil)
	if code != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "at most 3 per minute") {
		t.Fatalf("4th join: %d %v %s", code, hdr, body)
	}
	// X-Forwarded-For from an untrusted peer changes nothing.
	if code, _, _ := admReq(t, nil, "POST", base+"/api/join", `{"username":"p5"}`, map[string]string{"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.7"}); code != 429 {
		t.Fatalf("spoofed X-Forwarded-For bypassed the limit: %d", code)
	}
	// The browser's form says it in the page.
	if code, _, body := admReq(t, nil, "POST", base+"/join", "username=p6", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); code != 429 || !strings.Contains(body, "too many new players") {
		t.Fatalf("form join over the limit: %d %.300s", code, body)
	}
	// Coming back with a session is not a new player.
	if code, _, _ := call(t, "POST", base+"/api/join", first.Token, "", nil); code != 200 {
		t.Fatalf("rejoin: %d", code)
	}
	// Behind a trusted proxy, X-Forwarded-For names the client.
	m2 := admInstance(t, r, k, map[string]string{"JOIN_RATE_LIMIT": "1", "TRUSTED_PROXIES": "127.0.0.1"}, nil)
	for _, ip := range []string{"198.51.100.1", "198.51.100.2"} {
		if code, _, body := admReq(t, nil, "POST", m2.URL()+"/api/join", `{}`, map[string]string{"Content-Type": "application/json", "X-Forwarded-For": ip}); code != 201 {
			t.Fatalf("join from %s: %d %s", ip, code, body)
		}
	}
	if code, _, _ := admReq(t, nil, "POST", m2.URL()+"/api/join", `{}`, map[string]string{"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.1"}); code != 429 {
		t.Fatalf("second join from one client behind the proxy: %d", code)
	}
}

// openSSE opens a live stream and returns its status and a closer.
func openSSE(t *testing.T, base string, hdr map[string]string) (int, string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/events?format=json", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		return res.StatusCode, res.Header.Get("Retry-After") + " " + string(b), func() {}
	}
	return 200, "", func() { cancel(); res.Body.Close() }
}

func TestLiveConnectionLimits(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, map[string]string{"MAX_CONNECTIONS_PER_IP": "2", "MAX_CONNECTIONS": "3", "TRUSTED_PROXIES": "127.0.0.1/32"}, nil)
	base := m.URL()
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for range 2 {
		code, msg, c := openSSE(t, base, from("198.51.100.1"))
		if code != 200 {
			t.Fatalf("stream: %d %s", code, msg)
		}
		closers = append(closers, c)
	}
	if code, msg, _ := openSSE(t, base, from("198.51.100.1")); code != 429 || !strings.Contains(msg, "limit 2") || !strings.HasPrefix(msg, "5 ") {
		t.Fatalf("third stream from one address: %d %s", code, msg)
	}
	// WebSocket counts too.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws?format=json", &websocket.DialOptions{HTTPHeader: http.Header{"X-Forwarded-For": {"198.51.100.1"}}})
	if err == nil || res == nil || res.StatusCode != 429 {
		t.Fatalf("third connection over WebSocket: %v %v", err, res)
	}
	code, msg, c := openSSE(t, base, from("198.51.100.2"))
	if code != 200 {
		t.Fatalf("another address: %d %s", code, msg)
	}
	closers = append(closers, c)
	if code, msg, _ := openSSE(t, base, from("198.51.100.3")); code != 503 || !strings.Contains(msg, "full") {
		t.Fatalf("over the total: %d %s", code, msg)
	}
	// Closing one frees its slot.
	closers[0]()
	testenv.Eventually(t, 5*time.Second, func() string {
		code, msg, c := openSSE(t, base, from("198.51.100.3"))
		if code != 200 {
			return fmt.Sprintf("%d %s", code, msg)
		}
		closers = append(closers, c)
		return ""
	})
}

func TestBodyLimits(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	base := m.URL()
	a := join(t, base, "ann")
	big := `{"count":1,"pad":"` + strings.Repeat("x", 17<<10) + `"}`
	for _, tc := range []struct{ path, token string }{{"/api/tap", a.Token}, {"/api/join", ""}, {"/join", ""}, {"/admin/reset", admToken}, {"/admin/kick/x", admToken}} {
		code, _, body := call(t, "POST", base+tc.path, tc.token, big, nil)
		if code != 413 || !strings.Contains(body, "too large") {
			t.Errorf("%s with 17 KiB: %d %.100s", tc.path, code, body)
		}
	}
	// count outside 1–50.
	for _, bad := range []string{`{"count":0}`, `{"count":51}`, `{"count":-1}`, `{"count":1000000000}`} {
		if code, _, body := call(t, "POST", base+"/api/tap", a.Token, bad, nil); code != 400 || !strings.Contains(body, "1 to 50") {
			t.Errorf("tap %s: %d %s", bad, code, body)
		}
	}
}

// Slow clients cannot pin connections: headers must arrive within 5 s and
// the whole request within 15 s.
func TestSlowClientsAreCut(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the server's timeouts")
	}
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	type result struct {
		name string
		took time.Duration
	}
	results := make(chan result, 2)
	slow := func(name, head string, drip string) {
		conn, err := net.Dial("tcp", m.Addr())
		if err != nil {
			t.Error(err)
			results <- result{name, 0}
			return
		}
		defer conn.Close()
		start := time.Now()
		_, _ = io.WriteString(conn, head)
		closed := make(chan struct{})
		go func() { // the server closes (after maybe answering 408)
			_, _ = io.Copy(io.Discard, conn)
			close(closed)
		}()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-closed:
				results <- result{name, time.Since(start)}
				return
			case <-tick.C:
				if time.Since(start) > 40*time.Second {
					results <- result{name, -1}
					return
				}
				_, _ = io.WriteString(conn, drip)
			}
		}
	}
	go slow("headers", "GET /api/game-state HTTP/1.1\r\nHost: x\r\n", "X-Slow: 1\r\n")
	go slow("body", "POST /api/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", " ")
	for range 2 {
		res := <-results
		t.Logf("slow %s cut after %v", res.name, res.took)
		limit := map[string]time.Duration{"headers": 8 * time.Second, "body": 20 * time.Second}[res.name]
		if res.took < 0 || res.took > limit {
			t.Errorf("slow %s: connection held for %v (limit %v)", res.name, res.took, limit)
		}
	}
}

func TestWebSocketOriginAndMessageLimit(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	wsURL := "ws" + strings.TrimPrefix(m.URL(), "http") + "/ws?format=json"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A page of another origin may not open the socket.
	_, res, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin upgrade: %v %v", err, res)
	}
	// The same origin may.
	c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {m.URL()}}})
	if err != nil {
		t.Fatalf("same-origin upgrade: %v", err)
	}
	defer c.CloseNow()
	if _, _, err := c.Read(ctx); err != nil { // the current state
		t.Fatal(err)
	}
	// Client messages are taps of ~30 bytes: a big one closes the socket (1009).
	_ = c.Write(ctx, websocket.MessageText, bytes.Repeat([]byte("x"), 64<<10))
	for {
		_, _, err := c.Read(ctx)
		if err != nil {
			if s := websocket.CloseStatus(err); s != websocket.StatusPolicyViolation && s != websocket.StatusMessageTooBig {
				t.Fatalf("after a client message: %v (status %v)", err, s)
			}
			break
		}
	}
}

func TestTokensAndSessionCookie(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	base := m.URL()
	a := join(t, base, "ann")
	sig := a.Token[strings.LastIndexByte(a.Token, '.')+1:]
	other := join(t, base, "ben")
	for name, tok := range map[string]string{
		"forged":         "v1." + a.User.ID + "." + strings.Repeat("A", len(sig)),
		"tampered id":    "v1." + other.User.ID + "." + sig,
		"truncated":      a.Token[:len(a.Token)-1],
		"another key":    "v1." + a.User.ID + ".abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ",
		"unknown user":   "",
		"wrong version":  "v3" + a.Token[2:],
		"v1 with v2 sig": "v1." + a.User.ID + "." + sig,
	} {
		if tok == "" {
			continue
		}
		if code, _, _ := call(t, "POST", base+"/api/tap", tok, "", nil); code != 401 {
			t.Errorf("%s token: %d", name, code)
		}
		// As a cookie too.
		if code, _, _ := admReq(t, nil, "POST", base+"/api/tap", "", map[string]string{"Cookie": "tapwars_session=" + tok}); code != 401 {
			t.Errorf("%s cookie: %d", name, code)
		}
	}
	// Tokens are v2 (they carry the player); v1 tokens of earlier versions keep working.
	if !strings.HasPrefix(a.Token, "v2.") {
		t.Fatalf("token %q is not v2", a.Token)
	}
	if code, _, body := call(t, "POST", base+"/api/tap", auth.NewSigner([]byte("test-secret-0123456789")).Sign(a.User.ID), "", nil); code != 202 {
		t.Fatalf("v1 token: %d %s", code, body)
	}
	// The session cookie: HttpOnly, SameSite=Lax, Secure behind TLS only.
	_, hdr, _ := admReq(t, nil, "POST", base+"/api/join", `{"username":"cy"}`, map[string]string{"Content-Type": "application/json"})
	ck := hdr.Get("Set-Cookie")
	if !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Lax") || strings.Contains(ck, "Secure") {
		t.Fatalf("session cookie over plain HTTP: %q", ck)
	}
	// X-Forwarded-Proto counts only from a trusted proxy.
	_, hdr, _ = admReq(t, nil, "POST", base+"/api/join", `{"username":"di"}`, map[string]string{"Content-Type": "application/json", "X-Forwarded-Proto": "https"})
	if ck := hdr.Get("Set-Cookie"); strings.Contains(ck, "Secure") || hdr.Get("Strict-Transport-Security") != "" {
		t.Fatalf("X-Forwarded-Proto of an untrusted peer believed: %q %v", ck, hdr)
	}
	proxied := admInstance(t, r, k, map[string]string{"TRUSTED_PROXIES": "127.0.0.1"}, nil)
	_, hdr, _ = admReq(t, nil, "POST", proxied.URL()+"/api/join", `{"username":"di"}`, map[string]string{"Content-Type": "application/json", "X-Forwarded-Proto": "https"})
	if ck := hdr.Get("Set-Cookie"); !strings.Contains(ck, "Secure") || !strings.HasPrefix(hdr.Get("Strict-Transport-Security"), "max-age=") {
		t.Fatalf("session cookie and HSTS behind a trusted TLS proxy: %q %v", ck, hdr)
	}
}

// Without Kafka the end of the tap log is unknown: reset and import are
// refused with 503 and change nothing.
func TestAdminResetRefusedWithoutKafka(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	base := m.URL()
	a := join(t, base, "ann")
	tapN(t, base, a, 3)
	waitTotals(t, base, map[*joined]int64{&a: 3})
	_, export := admin(t, "GET", base+"/admin/export", "", nil)
	k.Stop()
	start := time.Now()
	if code, body := admin(t, "POST", base+"/admin/reset", "", nil); code != 503 || !strings.Contains(body, "Kafka did not answer") {
		t.Fatalf("reset without Kafka: %d %s", code, body)
	}
	if code, body := admin(t, "POST", base+"/admin/import", export, nil); code != 503 {
		t.Fatalf("import without Kafka: %d %s", code, body)
	}
	t.Logf("refused after %v", time.Since(start))
	if gs := state(t, base).GameState; gs.Round != 0 || gs.TotalTaps != 3 {
		t.Fatalf("state changed: %+v", gs)
	}
	// The page still shows, with the reason.
	if code, body := admin(t, "GET", base+"/admin/stats", "", nil); code != 200 || !strings.Contains(body, "Kafka end offsets unavailable") {
		t.Fatalf("stats without Kafka: %d %.300s", code, body)
	}
	k.Restart()
}

// An import replaces the players: one who joined after the export is not in
// the file and is signed out (401, so their page joins again), on their
// open WebSocket too, never answered 202 for taps the consumer skips as
// unknown; a player in the file taps on with the team the file gives them.
func TestImportSignsOutPlayersNotInTheFile(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	base := m.URL()
	a, b := join(t, base, "ann"), join(t, base, "ben")
	tapN(t, base, a, 2)
	waitTotals(t, base, map[*joined]int64{&a: 2})
	code, _, raw := admReq(t, nil, "GET", base+"/admin/export", "", bearer)
	if code != 200 {
		t.Fatalf("export: %d", code)
	}
	// In the file, ben moves to the other team.
	var ex store.Export
	if err := json.Unmarshal([]byte(raw), &ex); err != nil {
		t.Fatal(err)
	}
	other := map[game.Team]game.Team{game.Blue: game.Red, game.Red: game.Blue}
	for i := range ex.Players {
		if ex.Players[i].ID == b.User.ID {
			ex.Players[i].Team = other[b.User.Team]
		}
	}
	file, _ := json.Marshal(ex)
	c := join(t, base, "cat") // after the export
	ws := dialTaps(t, base, "?format=json", bearerHeader(c.Token))
	ws.send(`{"count":1,"seq":1}`)
	if f := ws.nextJSON(); f.Type != "ack" {
		t.Fatalf("cat's tap over the socket: %+v", f)
	}
	tapN(t, base, b, 1) // all three are cached by the instance now
	waitTotals(t, base, map[*joined]int64{&a: 2, &b: 1, &c: 1})

	if code, body := admin(t, "POST", base+"/admin/import", string(file), nil); code != 200 {
		t.Fatalf("import: %d %s", code, body)
	}
	testenv.Eventually(t, 2*time.Second, func() string {
		if code, _, body := call(t, "POST", base+"/api/tap", c.Token, "", nil); code != 401 {
			return fmt.Sprintf("a tap of a player not in the file: %d %s", code, body)
		}
		return ""
	})
	ws.send(`{"count":1,"seq":2}`) // cat's page, open since before the import
	if f := ws.nextJSON(); f.Type != "error" || f.Status != 401 {
		t.Fatalf("a tap over the open socket of a player not in the file: %+v", f)
	}
	var tap struct {
		TapEvent struct {
			Team game.Team `json:"team"`
		} `json:"tapEvent"`
	}
	if code, _, body := call(t, "POST", base+"/api/tap", b.Token, "", &tap); code != 202 || tap.TapEvent.Team != other[b.User.Team] {
		t.Fatalf("ben's tap after the import: %d %s, want team %s", code, body, other[b.User.Team])
	}
	b.User.Team = other[b.User.Team]
	waitTotals(t, base, map[*joined]int64{&a: 2, &b: 1})
}
