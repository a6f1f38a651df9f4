package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

var binary string

// TestMain builds the real binary once; the tests start, kill and restart it.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tapwars-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "tapwars")
	out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one run of the binary.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	// metrics is the base URL of its METRICS_ADDR listener.
	metrics string
	log     *bytes.Buffer
	logMu   *sync.Mutex // guards log
	env     []string
}

func start(t *testing.T, port int, env ...string) *proc {
	t.Helper()
	mport := testenv.FreePort(t)
	p := &proc{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), metrics: fmt.Sprintf("http://127.0.0.1:%d", mport),
		log: &bytes.Buffer{}, logMu: &sync.Mutex{}, env: env}
	p.cmd = exec.Command(binary)
	p.cmd.Env = append(os.Environ(), append([]string{fmt.Sprintf("ADDR=127.0.0.1:%d", port), fmt.Sprintf("METRICS_ADDR=127.0.0.1:%d", mport),
		"SESSION_SECRET=binary-test-secret-123456"}, env...)...)
	p.cmd.Stdout = io.Discard
	mu := p.logMu
	p.cmd.Stderr = writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return p.log.Write(b) })
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(p.base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("binary not ready: %v\n%s", err, p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

// term sends SIGTERM and checks the process exits cleanly within 10 s.
func (p *proc) term() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			p.logMu.Lock()
			log := p.log.String()
			p.logMu.Unlock()
			p.t.Fatalf("exit after SIGTERM: %v\n%s", err, log[max(0, len(log)-4000):])
		}
	case <-time.After(10 * time.Second):
		p.t.Fatal("no exit within 10 s of SIGTERM")
	}
}

type joined struct {
	User  game.User `json:"user"`
	Token string    `json:"token"`
}

func post(base, path, token, body string) (int, []byte, error) {
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

func join(t *testing.T, base, name string) joined {
	t.Helper()
	code, b, err := post(base, "/api/join", "", fmt.Sprintf(`{"username":%q}`, name))
	var j joined
	if err != nil || code != 201 || json.Unmarshal(b, &j) != nil {
		t.Fatalf("join: %d %s %v", code, b, err)
	}
	return j
}

func gameState(t *testing.T, base string) game.Snapshot {
	t.Helper()
	res, err := http.Get(base + "/api/game-state?limit=100")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var s game.Snapshot
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func userTaps(t *testing.T, base string, j joined) int64 {
	t.Helper()
	code, b, err := post(base, "/api/join", j.Token, "")
	var again joined
	if err != nil || code != 200 || json.Unmarshal(b, &again) != nil {
		t.Fatalf("rejoin: %d %s %v", code, b, err)
	}
	if again.User.ID != j.User.ID || again.User.Team != j.User.Team {
		t.Fatalf("came back as someone else: %+v vs %+v", again.User, j.User)
	}
	return again.User.TapCount
}

// answered is one answered tap.
type answered struct {
	code int
	ev   game.TapEvent
}

// tapAnswers taps as every player from 8 goroutines until stop closes and
// returns every answer. A request that failed after reaching the server (cut
// off by a kill) is kept as an answer with code 0 and the player's team: Kafka
// may or may not have taken that tap. A request refused at connect (the
// instance was down) never reached it and is left out.
func tapAnswers(base string, players []joined, stop <-chan struct{}) func() []answered {
	var (
		mu  sync.Mutex
		out []answered
		wg  sync.WaitGroup
	)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				pl := players[(i+n)%len(players)]
				code, b, err := post(base, "/api/tap", pl.Token, "")
				if err != nil {
					// Refused at connect (the instance is down): the
					// tap never reached it and cannot count.
					if !errors.Is(err, syscall.ECONNREFUSED) {
						// No answer (the instance was killed): Kafka may
						// have taken the tap before the crash, or not.
						mu.Lock()
						out = append(out, answered{ev: game.TapEvent{Team: pl.User.Team}})
						mu.Unlock()
					}
					time.Sleep(10 * time.Millisecond)
					continue
				}
				a := answered{code: code}
				var r struct {
					TapEvent game.TapEvent `json:"tapEvent"`
				}
				if json.Unmarshal(b, &r) == nil {
					a.ev = r.TapEvent
				}
				mu.Lock()
				out = append(out, a)
				mu.Unlock()
				if code != http.StatusAccepted {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	return func() []answered { wg.Wait(); mu.Lock(); defer mu.Unlock(); return out }
}

// load is tapAnswers that keeps the ids of acknowledged events.
func load(base string, players []joined, stop <-chan struct{}) (acked func() map[string]bool) {
	answers := tapAnswers(base, players, stop)
	return func() map[string]bool {
		ids := map[string]bool{}
		for _, a := range answers() {
			if a.code == http.StatusAccepted && a.ev.ID != "" {
				ids[a.ev.ID] = true
			}
		}
		return ids
	}
}

// kill -9 under load with real Redis and the broker outside the process:
// every acknowledged tap is in the topic, and Redis counts exactly what the
// topic holds, per player.
func TestKillUnderLoadExternal(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	testenv.EachKafka(t, testKillUnderLoadExternal)
}

func testKillUnderLoadExternal(t *testing.T, kafka string) {
	r, k := testenv.StartRedis(t), testenv.StartBroker(t, kafka, 4, stream.Topic)
	port := testenv.FreePort(t)
	env := append([]string{"REDIS_URL=" + r.URL(), "DATA_DIR=" + t.TempDir()}, testenv.EnvList(k.Env())...)
	p := start(t, port, env...)
	var players []joined
	for i := range 6 {
		players = append(players, join(t, p.base, fmt.Sprintf("kill%d", i)))
	}
	stop := make(chan struct{})
	acked := load(p.base, players, stop)
	time.Sleep(1500 * time.Millisecond)
	p.kill()
	p = start(t, port, env...)
	time.Sleep(1000 * time.Millisecond)
	close(stop)
	ackedIDs := acked()
	if len(ackedIDs) < 50 {
		t.Fatalf("only %d taps acknowledged", len(ackedIDs))
	}

	total := checkCounts(t, p.base, k.Addrs(), ackedIDs, players)
	t.Logf("%d acknowledged, %d in topic, all counted once", len(ackedIDs), total)
	p.term()
}

// The embedded broker and store keep everything across kill -9 and SIGTERM.
func TestEmbeddedRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	for _, mode := range []string{"memory", "redis-server"} {
		t.Run(mode, func(t *testing.T) {
			if _, err := exec.LookPath("redis-server"); err != nil && mode == "redis-server" {
				t.Skip("redis-server not installed")
			}
			port := testenv.FreePort(t)
			env := []string{"DATA_DIR=" + t.TempDir(), "EMBEDDED_REDIS=" + mode, "KAFKA_PARTITIONS=3"}
			p := start(t, port, env...)
			a, b := join(t, p.base, "ann"), join(t, p.base, "ben")
			tap := func(j joined, n int) {
				for range n {
					if code, body, err := post(p.base, "/api/tap", j.Token, ""); err != nil || code != 202 {
						t.Fatalf("tap: %d %s %v", code, body, err)
					}
				}
			}
			waitTotal := func(want int64) {
				testenv.Eventually(t, 15*time.Second, func() string {
					if got := gameState(t, p.base).GameState.TotalTaps; got != want {
						return fmt.Sprintf("total %d, want %d", got, want)
					}
					return ""
				})
			}
			tap(a, 12)
			tap(b, 5)
			waitTotal(17)
			before := gameState(t, p.base)

			p.kill()
			p = start(t, port, env...)
			after := gameState(t, p.base)
			if after.GameState.TotalTaps != 17 || after.GameState.BlueScore != before.GameState.BlueScore ||
				len(after.Leaderboard) != 2 || after.Leaderboard[0].Username != "ann" || after.Leaderboard[0].TapCount != 12 {
				t.Fatalf("after kill -9: %+v, before %+v", after, before)
			}
			if userTaps(t, p.base, a) != 12 || userTaps(t, p.base, b) != 5 {
				t.Fatal("player counts changed across kill -9")
			}

			// Taps acknowledged just before a kill are counted after the restart.
			tap(b, 8)
			p.kill()
			p = start(t, port, env...)
			waitTotal(25)

			tap(a, 3)
			waitTotal(28)
			p.term()
			p = start(t, port, env...)
			if got := gameState(t, p.base).GameState.TotalTaps; got != 28 {
				t.Fatalf("after SIGTERM: total %d", got)
			}
			if userTaps(t, p.base, a) != 15 || userTaps(t, p.base, b) != 13 {
				t.Fatal("player counts changed across SIGTERM")
			}
			p.term()
		})
	}
}

// SIGTERM under load, with live clients: the instance stops accepting,
// answers what is in flight, flushes the producer, records the batch being
// applied, tells SSE clients `event: bye` and closes WebSockets with 1012
// (service restart), and exits 0 within 10 s. After a restart every tap it
// answered 202 is counted, exactly once. The -healthcheck mode answers 0
// while it is ready and 1 when nothing listens.
func TestSIGTERMUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 4, stream.Topic)
	port := testenv.FreePort(t)
	env := []string{"REDIS_URL=" + r.URL(), "KAFKA_BROKERS=" + strings.Join(k.Addrs(), ","), "DATA_DIR=" + t.TempDir(), "TAP_RATE_LIMIT=0"}
	p := start(t, port, env...)

	// The container healthcheck: 0 when ready, 1 when nothing answers.
	health := func(addr string) int {
		cmd := exec.Command(binary, "-healthcheck")
		cmd.Env = append(os.Environ(), "ADDR="+addr)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		} else if err != nil {
			t.Fatalf("healthcheck: %v %s", err, out)
		}
		return 0
	}
	if code := health(fmt.Sprintf(":%d", port)); code != 0 {
		t.Fatalf("healthcheck of a ready instance: exit %d", code)
	}
	if code := health(fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))); code != 1 {
		t.Fatalf("healthcheck with nothing listening: exit %d", code)
	}

	var players []joined
	for i := range 6 {
		players = append(players, join(t, p.base, fmt.Sprintf("term%d", i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// An SSE client: records the events it gets until the stream ends.
	req, _ := http.NewRequestWithContext(ctx, "GET", p.base+"/events?format=json", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sseEvents := make(chan []string, 1)
	go func() {
		defer res.Body.Close()
		var names []string
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				names = append(names, name)
			}
		}
		sseEvents <- names
	}()
	// A WebSocket client: records how the server closed it.
	ws, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%d/ws?format=json", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	wsClosed := make(chan websocket.StatusCode, 1)
	go func() {
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				wsClosed <- websocket.CloseStatus(err)
				return
			}
		}
	}()

	stop := make(chan struct{})
	acked := load(p.base, players, stop)
	time.Sleep(time.Second)
	sent := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case names := <-sseEvents:
		if !slices.Contains(names, "bye") {
			t.Fatalf("SSE client saw %v, no bye", names)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SSE stream still open 10 s after SIGTERM")
	}
	byeAfter := time.Since(sent)
	select {
	case code := <-wsClosed:
		if code != websocket.StatusServiceRestart {
			t.Fatalf("WebSocket closed with %v, want 1012 (service restart)", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WebSocket still open 10 s after SIGTERM")
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.log.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10 s of SIGTERM")
	}
	exitAfter := time.Since(sent)
	close(stop)
	ids := acked()
	if len(ids) < 50 {
		t.Fatalf("only %d taps acknowledged", len(ids))
	}
	t.Logf("SIGTERM: live clients told to reconnect after %v, exit 0 after %v, with %d taps acknowledged under load",
		byeAfter.Round(time.Millisecond), exitAfter.Round(time.Millisecond), len(ids))

	p = start(t, port, env...)
	checkCounts(t, p.base, k.Addrs(), ids, players)
	p.term()
}

// ownedPartitions lists the partitions an instance's consumer owns, from
// the tapwars_consumer_lag series of its /metrics.
func ownedPartitions(base string) []string {
	res, err := http.Get(base + "/metrics")
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	var parts []string
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), `tapwars_consumer_lag{partition="`); ok {
			parts = append(parts, rest[:strings.IndexByte(rest, '"')])
		}
	}
	slices.Sort(parts)
	return parts
}

// Two instances share the partitions; one is killed with SIGKILL under
// load (it never leaves the group): the other takes over all partitions
// once the group's session times out, and every acknowledged tap, on
// either instance, is counted exactly once.
func TestKillOneOfTwo(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 4, stream.Topic)
	env := []string{"REDIS_URL=" + r.URL(), "KAFKA_BROKERS=" + strings.Join(k.Addrs(), ","), "TAP_RATE_LIMIT=0"}
	a := start(t, testenv.FreePort(t), append(env, "DATA_DIR="+t.TempDir())...)
	b := start(t, testenv.FreePort(t), append(env, "DATA_DIR="+t.TempDir())...)
	testenv.Eventually(t, 20*time.Second, func() string {
		pa, pb := ownedPartitions(a.metrics), ownedPartitions(b.metrics)
		if len(pa) != 2 || len(pb) != 2 {
			return fmt.Sprintf("partitions %v %v", pa, pb)
		}
		return ""
	})
	var players []joined
	for i := range 6 {
		players = append(players, join(t, []string{a.base, b.base}[i%2], fmt.Sprintf("two%d", i)))
	}
	stop := make(chan struct{})
	ackedA, ackedB := load(a.base, players, stop), load(b.base, players, stop)
	time.Sleep(time.Second)
	b.kill()
	killed := time.Now()
	testenv.Eventually(t, 30*time.Second, func() string {
		if pa := ownedPartitions(a.metrics); len(pa) != 4 {
			return fmt.Sprintf("survivor owns %v", pa)
		}
		return ""
	})
	t.Logf("the survivor owns all partitions %v after the kill", time.Since(killed).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	close(stop)
	ids := ackedA()
	for id := range ackedB() {
		ids[id] = true
	}
	total := checkCounts(t, a.base, k.Addrs(), ids, players)
	t.Logf("%d taps acknowledged by the two instances, %d in the topic, all counted once", len(ids), total)
	a.term()
}

// checkCounts fails unless every acknowledged tap is in the topic and the
// running binary counts exactly what the topic holds, in total and per player.
func checkCounts(t *testing.T, base string, brokers []string, acked map[string]bool, players []joined) int64 {
	t.Helper()
	ids := make([]string, len(players))
	byID := map[string]joined{}
	for i, p := range players {
		ids[i], byID[p.User.ID] = p.User.ID, p
	}
	return testenv.CheckAgainstTopic(t, brokers, maps.Keys(acked),
		func() game.State { return gameState(t, base).GameState }, ids,
		func(id string) int64 { return userTaps(t, base, byID[id]) })
}

// brokerAddrs reads the embedded broker's addresses from the binary's log.
func (p *proc) brokerAddrs() []string {
	p.t.Helper()
	p.logMu.Lock()
	log := p.log.String()
	p.logMu.Unlock()
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, "embedded broker started") {
			continue
		}
		_, rest, _ := strings.Cut(l, "addrs=[")
		addrs, _, _ := strings.Cut(rest, "]")
		return strings.Fields(addrs)
	}
	p.t.Fatalf("no broker address in the log:\n%s", log)
	return nil
}

// The embedded binary killed -9 under load, after a kick and a new round,
// and restarted (with the in-process store it rebuilds everything from the
// log): every acknowledged tap is in the log, each player's count is what
// the log holds for this round, every player who got 201 is there with
// their team, and the round and the kick are as they were.
func TestEmbeddedKill9UnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	for _, mode := range []string{"memory", "redis-server"} {
		t.Run(mode, func(t *testing.T) {
			if _, err := exec.LookPath("redis-server"); err != nil && mode == "redis-server" {
				t.Skip("redis-server not installed")
			}
			const admin = "admin-token-for-binary-tests-0123"
			port := testenv.FreePort(t)
			env := []string{"DATA_DIR=" + t.TempDir(), "EMBEDDED_REDIS=" + mode, "KAFKA_PARTITIONS=3",
				"ADMIN_TOKEN=" + admin, "TAP_RATE_LIMIT=0"}
			p := start(t, port, env...)
			var players []joined
			for i := range 5 {
				players = append(players, join(t, p.base, fmt.Sprintf("k9p%d", i)))
			}
			cy := join(t, p.base, "cy")
			for range 4 {
				if code, body, err := post(p.base, "/api/tap", cy.Token, ""); err != nil || code != 202 {
					t.Fatalf("tap: %d %s %v", code, body, err)
				}
			}
			adminPost := func(path string) {
				if code, body, err := post(p.base, path, admin, ""); err != nil || code != http.StatusOK {
					t.Fatalf("%s: %d %s %v", path, code, body, err)
				}
			}
			adminPost("/admin/kick/" + cy.User.ID)
			adminPost("/admin/reset")

			stop := make(chan struct{})
			acked := load(p.base, players, stop)
			time.Sleep(1500 * time.Millisecond)
			p.kill()
			close(stop)
			ackedIDs := acked()
			if len(ackedIDs) < 50 {
				t.Fatalf("only %d taps acknowledged", len(ackedIDs))
			}
			p = start(t, port, env...)

			// This round's taps per player, from the log.
			inLog, want := testenv.ReadTopic(t, p.brokerAddrs())
			testenv.InTopic(t, inLog, maps.Keys(ackedIDs))
			var total int64
			for _, n := range want {
				total += n
			}
			testenv.Eventually(t, 15*time.Second, func() string {
				if gs := gameState(t, p.base).GameState; gs.TotalTaps != total || gs.BlueScore+gs.RedScore != total || gs.Round != 1 {
					return fmt.Sprintf("state %+v, the log holds %d taps this round (round 1)", gs, total)
				}
				return ""
			})
			for _, j := range players {
				if got := userTaps(t, p.base, j); got != want[j.User.ID] { // also checks id and team
					t.Fatalf("%s: %d taps, the log has %d", j.User.Username, got, want[j.User.ID])
				}
			}
			if code, _, _ := post(p.base, "/api/tap", cy.Token, ""); code != 401 {
				t.Fatalf("the kicked player's token after kill -9: %d", code)
			}
			t.Logf("%d acknowledged under load, %d taps this round in the log, all counted once", len(ackedIDs), total)
			p.term()
		})
	}
}
