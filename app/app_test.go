package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapwars/tapwars/app"
	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// instance runs one tapwars Main against the test's redis-server and broker
// (kfake or Apache Kafka).
func instance(t *testing.T, r *testenv.Redis, k testenv.Broker, env map[string]string) *app.Main {
	t.Helper()
	return startApp(t, r, k, env, nil)
}

// startApp runs one instance on 127.0.0.1:0 against r and k with env over
// the test defaults, letting tune adjust Main before it starts. Instances of
// one test share SESSION_SECRET and KAFKA_GROUP.
func startApp(t *testing.T, r *testenv.Redis, k testenv.Broker, env map[string]string, tune func(*app.Main)) *app.Main {
	t.Helper()
	m := app.NewMain()
	vars := map[string]string{
		"ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir(), "REDIS_URL": r.URL(),
		"SESSION_SECRET": "test-secret-0123456789", "LOG_LEVEL": "warn", "METRICS_ADDR": "127.0.0.1:0",
	}
	maps.Copy(vars, k.Env())
	maps.Copy(vars, env)
	if err := m.Config.Parse(nil, func(k string) string { return vars[k] }, io.Discard); err != nil {
		t.Fatal(err)
	}
	m.LogOutput = testWriter{t}
	if tune != nil {
		tune(m)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	metricsURLs.Store(m.URL(), m.MetricsURL())
	waitReady(t, m.URL())
	return m
}

// metricsURLs maps an instance's URL to its METRICS_ADDR listener's.
var metricsURLs sync.Map

// metricsOf is the /metrics URL of the instance at base.
func metricsOf(t *testing.T, base string) string {
	t.Helper()
	u, ok := metricsURLs.Load(base)
	if !ok || u == "" {
		t.Fatalf("no metrics listener known for %s", base)
	}
	return u.(string) + "/metrics"
}

// waitReady waits (at most 15 s) until the instance is ready: its consumer
// joined its group and the state is not being rebuilt. Until then admin
// resets and imports answer 503, as they must. Tests that break a
// dependency on purpose go on after the wait either way.
func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%s not ready after 15 s; going on", base)
}

// overlay returns base with env's entries put over it.
func overlay(base, env map[string]string) map[string]string {
	out := maps.Clone(base)
	maps.Copy(out, env)
	return out
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type joined struct {
	User  game.User `json:"user"`
	Token string    `json:"token"`
}

// call does an HTTP request and decodes a JSON answer into out (if not nil).
func call(t *testing.T, method, url, token, body string, out any) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, b)
		}
	}
	return res.StatusCode, res.Header, string(b)
}

func join(t *testing.T, base, name string) joined {
	t.Helper()
	var j joined
	code, _, body := call(t, "POST", base+"/api/join", "", fmt.Sprintf(`{"username":%q}`, name), &j)
	if code != http.StatusCreated {
		t.Fatalf("join %q: %d %s", name, code, body)
	}
	return j
}

func state(t *testing.T, base string) game.Snapshot {
	t.Helper()
	var s game.Snapshot
	if code, _, body := call(t, "GET", base+"/api/game-state", "", "", &s); code != 200 {
		t.Fatalf("game-state: %d %s", code, body)
	}
	return s
}

func TestAPIContract(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 3, stream.Topic)
	m := instance(t, r, k, nil)
	base := m.URL()
	// Metrics are per process: other tests in this package may have tapped before.
	accepted := func() string {
		_, _, body := call(t, "GET", metricsOf(t, base), "", "", nil)
		for line := range strings.SplitSeq(body, "\n") {
			if v, ok := strings.CutPrefix(line, "tapwars_taps_accepted_total "); ok {
				return v
			}
		}
		return "0"
	}
	acceptedBefore, _ := strconv.ParseFloat(accepted(), 64)

	// Join: 201 with user and token; teams alternate.
	a := join(t, base, "alice")
	b := join(t, base, "bob")
	if a.User.Team == b.User.Team || !a.User.Team.Valid() || a.Token == "" || a.User.TapCount != 0 {
		t.Fatalf("joins: %+v %+v", a, b)
	}
	// Join errors.
	for _, tc := range []struct {
		body string
		code int
		msg  string
	}{
		{`{"username":"\u3164"}`, 400, "invisible"},
		{`{"username":"` + strings.Repeat("x", 25) + `"}`, 400, "at most 24 characters"},
		{`{not json`, 400, "not valid JSON"},
		{`{"username":"` + strings.Repeat("x", 20000) + `"}`, 413, "too large"},
	} {
		code, _, body := call(t, "POST", base+"/api/join", "", tc.body, nil)
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("join %.40s: %d %s, want %d %q", tc.body, code, body, tc.code, tc.msg)
		}
	}
	// A blank name gets a generated one.
	var anon joined
	if code, _, body := call(t, "POST", base+"/api/join", "", `{"username":"  "}`, &anon); code != 201 || anon.User.Username == "" {
		t.Fatalf("blank name: %d %s", code, body)
	}
	// Coming back with the token keeps id and team: 200.
	var again joined
	if code, _, body := call(t, "POST", base+"/api/join", a.Token, `{"username":"someone else"}`, &again); code != 200 || again.User.ID != a.User.ID || again.User.Team != a.User.Team {
		t.Fatalf("rejoin: %d %s", code, body)
	}

	// Tap: 202 after Kafka acknowledged; the event is the old TapEvent shape.
	var tr struct {
		Success  bool           `json:"success"`
		TapEvent map[string]any `json:"tapEvent"`
	}
	code, _, body := call(t, "POST", base+"/api/tap", a.Token, "", &tr)
	if code != 202 || !tr.Success {
		t.Fatalf("tap: %d %s", code, body)
	}
	for _, f := range []string{"id", "userId", "username", "team", "timestamp", "sessionId"} {
		if _, ok := tr.TapEvent[f]; !ok {
			t.Errorf("tapEvent lacks %s: %v", f, tr.TapEvent)
		}
	}
	if tr.TapEvent["team"] != string(a.User.Team) {
		t.Errorf("team %v", tr.TapEvent["team"])
	}
	// Old body fields are accepted when they match, refused when not.
	old := fmt.Sprintf(`{"userId":%q,"username":"alice","team":%q,"sessionId":%q}`, a.User.ID, a.User.Team, a.User.SessionID)
	if code, _, body := call(t, "POST", base+"/api/tap", a.Token, old, nil); code != 202 {
		t.Fatalf("tap with old fields: %d %s", code, body)
	}
	if code, _, body := call(t, "POST", base+"/api/tap", a.Token, fmt.Sprintf(`{"team":%q}`, b.User.Team), nil); code != 403 || !strings.Contains(body, "team") {
		t.Fatalf("tap for the other team: %d %s", code, body)
	}
	if code, _, body := call(t, "POST", base+"/api/tap", a.Token, `{"userId":"someone"}`, nil); code != 403 {
		t.Fatalf("tap as someone else: %d %s", code, body)
	}
	// Burst.
	if code, _, body := call(t, "POST", base+"/api/tap", b.Token, `{"count":50}`, nil); code != 202 {
		t.Fatalf("burst: %d %s", code, body)
	}
	for _, bad := range []string{`{"count":0}`, `{"count":51}`, `{"count":-1}`, `{"count":"x"}`} {
		if code, _, body := call(t, "POST", base+"/api/tap", b.Token, bad, nil); code != 400 {
			t.Errorf("tap %s: %d %s", bad, code, body)
		}
	}
	// 401 without a valid token, with a forged one, with a too long one.
	forged := a.Token[:len(a.Token)-2] + "xx"
	for _, tok := range []string{"", "garbage", forged, a.Token + strings.Repeat("A", 500)} {
		if code, _, body := call(t, "POST", base+"/api/tap", tok, "", nil); code != 401 || !strings.Contains(body, "token") {
			t.Errorf("tap with token %.20q: %d %s", tok, code, body)
		}
	}

	// Game state: counts arrive through Kafka and the consumer.
	testenv.Eventually(t, 10*time.Second, func() string {
		s := state(t, base)
		if s.GameState.TotalTaps != 52 {
			return fmt.Sprintf("%+v", s.GameState)
		}
		return ""
	})
	s := state(t, base)
	want := map[game.Team]int64{a.User.Team: 2, b.User.Team: 50}
	if s.GameState.BlueScore != want[game.Blue] || s.GameState.RedScore != want[game.Red] || s.GameState.ActiveUsers != 3 {
		t.Fatalf("state %+v", s.GameState)
	}
	if len(s.Leaderboard) != 2 || s.Leaderboard[0].Username != "bob" || s.Leaderboard[0].Rank != 1 || s.Leaderboard[1].TapCount != 2 {
		t.Fatalf("leaderboard %+v", s.Leaderboard)
	}
	if len(s.Users) != 3 {
		t.Fatalf("users %+v", s.Users)
	}
	if code, _, _ := call(t, "GET", base+"/api/game-state?limit=500", "", "", nil); code != 400 {
		t.Errorf("limit 500: %d", code)
	}

	// Health.
	if code, _, _ := call(t, "GET", base+"/healthz", "", "", nil); code != 200 {
		t.Errorf("healthz %d", code)
	}
	if code, _, body := call(t, "GET", base+"/readyz", "", "", nil); code != 200 || !strings.Contains(body, `"kafka":"ok"`) {
		t.Errorf("readyz %d %s", code, body)
	}
	if n, _ := strconv.ParseFloat(accepted(), 64); n-acceptedBefore != 52 {
		t.Errorf("metrics: %v taps accepted, want 52", n-acceptedBefore)
	}
}

// sseEvents follows /events?format=json and sends each state to out.
func sseEvents(t *testing.T, ctx context.Context, url string) <-chan game.Snapshot {
	t.Helper()
	msgs := sseStream(t, ctx, url, "")
	out := make(chan game.Snapshot, 100)
	go func() {
		defer close(out)
		for m := range msgs {
			if m.event != "state" {
				continue
			}
			var s game.Snapshot
			if err := json.Unmarshal([]byte(m.data), &s); err != nil {
				t.Errorf("bad state %q: %v", m.data, err)
				return
			}
			out <- s
		}
	}()
	return out
}

func TestSSEFollowsTheGame(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 3, stream.Topic)
	m := instance(t, r, k, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := join(t, m.URL(), "carol")
	events := sseStream(t, ctx, m.URL()+"/events?format=json", "")
	// The join is applied from the log: a state at connect may come before it.
	waitSSE(t, events, 5*time.Second, "a state with carol online", stateIs(t, func(s game.Snapshot) bool {
		if s.GameState.TotalTaps != 0 {
			t.Fatalf("state before any tap %+v", s.GameState)
		}
		return s.GameState.ActiveUsers == 1
	}))
	for range 10 {
		if code, _, body := call(t, "POST", m.URL()+"/api/tap", a.Token, "", nil); code != 202 {
			t.Fatalf("tap %d %s", code, body)
		}
	}
	waitSSE(t, events, 10*time.Second, "10 taps", stateIs(t, func(s game.Snapshot) bool { return s.GameState.TotalTaps == 10 }))
}

// curl -N, a real SSE client, sees the state event with one-line JSON.
func TestSSEWithCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 3, stream.Topic)
	m := instance(t, r, k, nil)
	out, _ := exec.Command("curl", "-sN", "--max-time", "2", m.URL()+"/events?format=json").Output()
	lines := strings.Split(string(out), "\n")
	var sawEvent bool
	for i, l := range lines {
		if l == "event: state" && i+1 < len(lines) && strings.HasPrefix(lines[i+1], `data: {"gameState":{`) {
			sawEvent = true
		}
	}
	if !sawEvent {
		t.Fatalf("curl saw no state event:\n%s", out)
	}
}

// Taps answered 202 are never lost and never counted twice when Redis is
// restarted under a running app.
func TestRedisRestartUnderLoad(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 3, stream.Topic)
	m := instance(t, r, k, nil)
	players := []joined{join(t, m.URL(), "p1"), join(t, m.URL(), "p2")}
	var mu sync.Mutex
	acked := map[string]int64{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", m.URL()+"/api/tap", bytes.NewReader(nil))
				req.Header.Set("Authorization", "Bearer "+p.Token)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == 202 {
					mu.Lock()
					acked[p.User.ID]++
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	r.Kill() // AOF with appendfsync always: nothing acknowledged by Redis is lost
	time.Sleep(500 * time.Millisecond)
	r.Start()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	var total int64
	for _, n := range acked {
		total += n
	}
	if total == 0 {
		t.Fatal("no tap was acknowledged")
	}
	testenv.Eventually(t, 20*time.Second, func() string {
		s := state(t, m.URL())
		if s.GameState.TotalTaps > total {
			t.Fatalf("counted %d of %d acknowledged taps", s.GameState.TotalTaps, total)
		}
		if s.GameState.TotalTaps != total {
			return fmt.Sprintf("total %d, acknowledged %d", s.GameState.TotalTaps, total)
		}
		return ""
	})
	for _, p := range players {
		var u joined
		call(t, "POST", m.URL()+"/api/join", p.Token, "", &u)
		if u.User.TapCount != acked[p.User.ID] {
			t.Fatalf("%s: %d counted, %d acknowledged", p.User.Username, u.User.TapCount, acked[p.User.ID])
		}
	}
}

// DEBUG_ADDR serves Go's profiler on its own listener, never on the game's.
func TestDebugAddrServesProfilerApart(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	m := instance(t, r, k, map[string]string{"DEBUG_ADDR": addr})
	code, _, body := call(t, "GET", "http://"+addr+"/debug/pprof/", "", "", nil)
	if code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof index on DEBUG_ADDR: %d %.200s", code, body)
	}
	code, _, body = call(t, "GET", "http://"+addr+"/debug/pprof/heap?debug=1", "", "", nil)
	if code != 200 || !strings.Contains(body, "HeapInuse") {
		t.Fatalf("heap profile: %d %.200s", code, body)
	}
	if code, _, _ := call(t, "GET", m.URL()+"/debug/pprof/", "", "", nil); code != 404 {
		t.Fatalf("the game's listener answers /debug/pprof/ with %d, want 404", code)
	}
}

// A connection that never sent a request (a client's pool dials spare ones
// under load) does not hold up Close, nor make it fail: before, Shutdown
// waited up to 5 s for it and a SIGTERM exited 1.
func TestCloseDoesNotWaitForUnusedConnections(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := startApp(t, r, k, nil, nil)
	c, err := net.Dial("tcp", strings.TrimPrefix(m.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(100 * time.Millisecond) // accepted
	start := time.Now()
	if err := m.Close(); err != nil {
		t.Fatalf("close with an unused connection open: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("close took %v with an unused connection open", took)
	}
}
