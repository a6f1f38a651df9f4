package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/tapwars/tapwars/app"
	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// ---------------------------------------------------------------- server --

// env is one tapwars instance on a fixed address, against the test's own
// redis-server and kfake broker, so that it can be stopped and started again
// on the same address with the same state.
type env struct {
	t     *testing.T
	redis *testenv.Redis
	kafka *testenv.Kafka
	log   *logSink
	m     *app.Main
	addr  string            // host:port the instance listens on
	base  string            // URL the browsers open: the instance, or a proxy in front of it
	vars  map[string]string // settings on top of the defaults
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with these settings (environment names) on top.
func newEnvWith(t *testing.T, vars map[string]string) *env {
	t.Helper()
	e := &env{t: t, redis: testenv.StartRedis(t), kafka: testenv.StartKafka(t, 3, stream.Topic), log: &logSink{t: t}, vars: vars}
	t.Cleanup(e.log.stop) // runs last: the instance may log while it closes
	e.start("127.0.0.1:0")
	e.base = e.m.URL()
	t.Cleanup(func() { _ = e.m.Close() })
	return e
}

func (e *env) start(addr string) {
	e.t.Helper()
	m := app.NewMain()
	vars := map[string]string{
		"ADDR": addr, "DATA_DIR": e.t.TempDir(), "REDIS_URL": e.redis.URL(),
		"KAFKA_BROKERS": strings.Join(e.kafka.Addrs(), ","), "SESSION_SECRET": "e2e-secret-0123456789abcdef",
		"LOG_LEVEL": "warn", "METRICS_ADDR": "127.0.0.1:0",
	}
	maps.Copy(vars, e.vars)
	if err := m.Config.Parse(nil, func(k string) string { return vars[k] }, io.Discard); err != nil {
		e.t.Fatal(err)
	}
	m.LogOutput = e.log
	if err := m.Run(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.m = m
	e.addr = m.Addr()
}

// restart closes the instance (live clients are told to reconnect) and
// starts a new one on the same address with the same Redis and Kafka.
func (e *env) restart() time.Duration {
	e.t.Helper()
	start := time.Now()
	if err := e.m.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	down := time.Since(start)
	e.start(e.addr)
	e.t.Logf("restart: closed in %v, serving again after %v", down.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return time.Since(start)
}

// proxyOptions say what the proxy in front of the instance does.
type proxyOptions struct {
	RefuseWS bool          // answer every /ws request with 403
	TapDelay time.Duration // hold each POST /api/tap answer this long
}

// proxy puts a reverse proxy in front of the instance; browsers opened
// afterwards use it. With RefuseWS it answers /ws with 403, as a proxy or
// firewall that does not pass WebSockets would; with TapDelay the answers
// to taps arrive late, as on a slow mobile network, while the live stream
// is fast. Everything else goes through. It returns the count of refused
// /ws requests.
func (e *env) proxy(opt proxyOptions) *atomic.Int64 {
	e.t.Helper()
	target, err := url.Parse(e.m.URL())
	if err != nil {
		e.t.Fatal(err)
	}
	var refused atomic.Int64
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0) // aborted streams at shutdown are expected
	if opt.TapDelay > 0 {
		rp.ModifyResponse = func(res *http.Response) error {
			if res.Request.URL.Path == "/api/tap" {
				time.Sleep(opt.TapDelay)
			}
			return nil
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if opt.RefuseWS && r.URL.Path == "/ws" {
			refused.Add(1)
			http.Error(w, "WebSockets are not allowed here", http.StatusForbidden)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	e.t.Cleanup(srv.Close) // after the browsers closed their streams
	e.base = srv.URL
	return &refused
}

// liveCount waits until the instance's hub has want clients per transport.
func (e *env) liveCount(want map[string]int) {
	e.t.Helper()
	testenv.Eventually(e.t, 10*time.Second, func() string {
		got := e.m.Hub.Count()
		for k, n := range want {
			if got[k] != n {
				return fmt.Sprintf("live clients %v, want %v", got, want)
			}
		}
		return ""
	})
}

// state is GET /api/game-state.
func (e *env) state() game.Snapshot {
	e.t.Helper()
	res, err := http.Get(e.m.URL() + "/api/game-state")
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var s game.Snapshot
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// apiJoin joins a player over the JSON API, without tapping; it returns
// the player's token and team.
func (e *env) apiJoin(name string) (token string, team game.Team) {
	e.t.Helper()
	res, err := http.Post(e.m.URL()+"/api/join", "application/json", strings.NewReader(fmt.Sprintf(`{"username":%q}`, name)))
	if err != nil {
		e.t.Fatal(err)
	}
	var j struct {
		Token string
		User  game.User
	}
	err = json.NewDecoder(res.Body).Decode(&j)
	res.Body.Close()
	if err != nil || j.Token == "" {
		e.t.Fatalf("join %s: %v %d", name, err, res.StatusCode)
	}
	return j.Token, j.User.Team
}

// apiTaps joins a player over the JSON API and taps count times at once;
// it returns the player's team.
func (e *env) apiTaps(name string, count int) game.Team {
	e.t.Helper()
	token, team := e.apiJoin(name)
	req, _ := http.NewRequest("POST", e.m.URL()+"/api/tap", strings.NewReader(fmt.Sprintf(`{"count":%d}`, count)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		e.t.Fatalf("tap: %d", res.StatusCode)
	}
	return team
}

// logSink sends the instance's log to the test log until the test ends.
type logSink struct {
	t       *testing.T
	mu      sync.Mutex
	stopped bool
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (l *logSink) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

// --------------------------------------------------------------- browser --

// chromium returns the browser binary: $CHROMIUM, Debian's real binary
// (/usr/bin/chromium is a wrapper script), or one on PATH.
func chromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/lib/chromium/chromium"); err == nil {
		return "/usr/lib/chromium/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browserFlags are the flags the browser tests run chromium with, on top of
// chromedp's defaults (which already include --headless, --no-first-run,
// --disable-background-networking and --disable-sync). DEVELOPERS.md lists
// them.
func browserFlags(t *testing.T, exe string) []chromedp.ExecAllocatorOption {
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()), // a fresh profile every time
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // chromium refuses to run as root with its sandbox
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
}

// newBrowser starts chromium for one test; players are separate browser
// contexts (separate cookie jars and connection pools) in it.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	exe := chromium()
	if exe == "" {
		t.Skip("no chromium found (apt-get install chromium, or set CHROMIUM=/path/to/chrome); skipping the browser tests")
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), browserFlags(t, exe)...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() { bcancel(); acancel() })
	start := time.Now()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	t.Logf("chromium started in %v", time.Since(start).Round(time.Millisecond))
	return bctx
}

// player is one person: a tab in a browser context of its own.
type player struct {
	t    *testing.T
	name string
	ctx  context.Context
	id   string
	team string
}

func newPlayer(t *testing.T, browser context.Context, name string) *player {
	t.Helper()
	csp := watchCSP(t, name)
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext(), chromedp.WithListener(csp))
	t.Cleanup(cancel)
	// Open the tab with this context itself: the first action on a context
	// creates its target and ties it to the context it runs with, so it must
	// not be one of the short-lived timeout contexts below.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab for %s: %v", name, err)
	}
	return &player{t: t, name: name, ctx: ctx}
}

// skewClock sets the player's phone clock d off (Date.now, which app.js
// reads) on every page the tab opens from now on.
func (p *player) skewClock(d time.Duration) {
	p.t.Helper()
	js := fmt.Sprintf(`(() => { const now = Date.now; Date.now = () => now() + %d; })()`, d.Milliseconds())
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js})
		return err
	}))
}

func (p *player) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

func eval[T any](p *player, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.t.Fatalf("%s: evaluate %.60q: %v", p.name, js, err)
	}
	return v
}

// watchCSP returns a listener that collects one tab's Content-Security-
// Policy violations; the test fails at its end if there was any: every page
// must work under the CSP as served.
func watchCSP(t *testing.T, name string) func(ev any) {
	listen, seen := cspListener()
	t.Cleanup(func() {
		for _, v := range seen() {
			t.Errorf("%s: Content-Security-Policy violation: %s", name, v)
		}
	})
	return listen
}

// cspListener collects the CSP violations that the browser log and the
// console report.
func cspListener() (listen func(ev any), seen func() []string) {
	var mu sync.Mutex
	var violations []string
	listen = func(ev any) {
		var text string
		switch e := ev.(type) {
		case *cdplog.EventEntryAdded:
			if e.Entry != nil {
				text = e.Entry.Text
			}
		case *runtime.EventConsoleAPICalled:
			for _, a := range e.Args {
				if a != nil && len(a.Value) > 0 {
					text += string(a.Value) + " "
				}
			}
		}
		if strings.Contains(text, "Content Security Policy") || strings.Contains(text, "Content-Security-Policy") {
			mu.Lock()
			violations = append(violations, text)
			mu.Unlock()
		}
	}
	seen = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(violations)
	}
	return listen, seen
}

var hexID = regexp.MustCompile(`^[0-9a-f]{16,64}(p[0-9]+)?$`) // p<N>: the partition a player is pinned to

// join opens the site, fills in the join form and submits it; path is then
// opened (e.g. "/?transport=sse") when it is not "/".
func (p *player) join(base, path string) {
	p.t.Helper()
	p.do(
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.Clear(chromedp.CSS("#username")), // a generated name is filled in
		chromedp.SendKeys(chromedp.CSS("#username"), p.name),
		chromedp.Click(chromedp.CSS(`form.join__form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#tap-button")),
	)
	if path != "/" {
		p.do(chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("#tap-button")))
	}
	p.id = eval[string](p, `document.querySelector('main').dataset.meId`)
	p.team = eval[string](p, `document.querySelector('main').dataset.team`)
	if !hexID.MatchString(p.id) || (p.team != "blue" && p.team != "red") {
		p.t.Fatalf("%s joined as id %q team %q", p.name, p.id, p.team)
	}
	if got := eval[string](p, `document.querySelector('.me__name').textContent`); got != p.name {
		p.t.Fatalf("page greets %q, want %q", got, p.name)
	}
}

// tap clicks the tap button n times through chromedp.Click (a real mouse
// press and release on the button's centre, after finding it each time).
func (p *player) tap(n int) {
	p.t.Helper()
	for range n {
		p.do(chromedp.Click(chromedp.CSS("#tap-button")))
	}
}

// tapFast clicks the button n times as fast as the DevTools protocol can
// deliver mouse events (each press and release is acknowledged by the page
// before the next), far faster than a person taps.
func (p *player) tapFast(n int) {
	p.t.Helper()
	type point struct{ X, Y float64 }
	c := eval[point](p, `(() => { const b = document.getElementById('tap-button'); b.scrollIntoView({block: 'center'});
		const r = b.getBoundingClientRect(); return {X: r.left + r.width / 2, Y: r.top + r.height / 2}; })()`)
	steps := make([]chromedp.Action[chromedp.Void], n)
	for i := range steps {
		steps[i] = chromedp.MouseClickXY(c.X, c.Y)
	}
	p.do(steps...)
}

// view is what a player's page shows.
type view struct {
	State  string // #connection-status data-state
	Status string // its text
	MyTaps string
	MyRank string
	Total  string
	Blue   string
	Red    string
	Board  []struct {
		ID   string
		Name string
		Taps int
	}
}

const viewJS = `(() => {
	const t = id => { const e = document.getElementById(id); return e ? e.textContent.trim() : ''; };
	const cs = document.getElementById('connection-status');
	return {
		State: cs ? cs.dataset.state : '', Status: t('connection-status'),
		MyTaps: t('my-taps'), MyRank: t('my-rank'), Total: t('total-taps'), Blue: t('blue-score'), Red: t('red-score'),
		Board: [...document.querySelectorAll('#leaderboard li[data-player-id], #leaderboard-full li[data-player-id]')].map(li => ({
			ID: li.dataset.playerId,
			Name: li.querySelector('.board__name').textContent,
			Taps: parseInt(li.querySelector('.board__taps').textContent, 10),
		})),
	};
})()`

func (p *player) view() view {
	p.t.Helper()
	return eval[view](p, viewJS)
}

func (v view) score(team string) string {
	if team == "blue" {
		return v.Blue
	}
	return v.Red
}

// row is a player's leaderboard taps, or -1 when not listed.
func (v view) row(p *player) int {
	for _, r := range v.Board {
		if r.ID == p.id && r.Name == p.name {
			return r.Taps
		}
	}
	return -1
}

// waitView polls the page (every 10 ms) until ok holds and returns how long
// that took; it fails the test with what the page showed after timeout.
func (p *player) waitView(timeout time.Duration, what string, ok func(view) bool) time.Duration {
	p.t.Helper()
	start := time.Now()
	waitUntil(p, 10*time.Millisecond, timeout, what, p.view, ok)
	return time.Since(start)
}

// waitUntil reads p's page with read every interval until ok holds and
// returns what it read; after timeout it fails the test with what the
// page showed.
func waitUntil[T any](p *player, every, timeout time.Duration, what string, read func() T, ok func(T) bool) T {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := read()
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s's page did not show %s within %v; it shows %+v", p.name, what, timeout, v)
		}
		time.Sleep(every)
	}
}

// waitConnected waits until the connection indicator is in one of states.
func (p *player) waitConnected(timeout time.Duration, states ...string) view {
	p.t.Helper()
	var last view
	p.waitView(timeout, "connection "+strings.Join(states, " or "), func(v view) bool {
		last = v
		for _, s := range states {
			if v.State == s {
				return true
			}
		}
		return false
	})
	return last
}

// fitsAt sets the viewport to w×h, lets the layout settle and reports
// whether the page fits it without scrolling either way.
func (p *player) fitsAt(w, h int64) bool {
	p.t.Helper()
	p.do(chromedp.EmulateViewport(w, h))
	time.Sleep(400 * time.Millisecond) // the tug bar animates its width
	return eval[bool](p, `document.documentElement.scrollHeight <= innerHeight && document.documentElement.scrollWidth <= innerWidth`)
}

// screenshot saves the whole page at the given viewport width as
// testdata/artifacts/<name>.png (the test artifacts; gitignored).
func (p *player) screenshot(name string, width, height int64, mobile bool) string {
	p.t.Helper()
	var opts []chromedp.EmulateViewportOption
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateScale(2))
	}
	p.do(chromedp.EmulateViewport(width, height, opts...))
	// Let the layout settle (the tug bar animates its width).
	time.Sleep(400 * time.Millisecond)
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	path := saveArtifact(p.t, name, png)
	p.do(chromedp.EmulateViewport(1280, 900))
	return path
}
