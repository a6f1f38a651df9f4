package app_test

// Several instances against one Redis and one Kafka, as operators run them
// behind a load balancer.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapwars/tapwars/app"
	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/live"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/stream"
)

// startNode runs an instance for tests that load it on purpose: no
// per-player limits.
func startNode(t *testing.T, r *testenv.Redis, k testenv.Broker, env map[string]string, tune func(*app.Main)) *app.Main {
	t.Helper()
	return startApp(t, r, k, overlay(map[string]string{"TAP_RATE_LIMIT": "0", "JOIN_RATE_LIMIT": "0"}, env), tune)
}

// sseMsg is one Server-Sent Event.
type sseMsg struct{ event, data string }

// sseStream follows an SSE endpoint (with a bearer token when set) until ctx
// ends or the server closes the stream, which closes the channel.
func sseStream(t *testing.T, ctx context.Context, url, token string) <-chan sseMsg {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") || res.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("GET %s: headers %v", url, res.Header)
	}
	out := make(chan sseMsg, 1000)
	go func() {
		defer close(out)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var m sseMsg
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m.event != "" || m.data != "" {
					select {
					case out <- m:
					case <-ctx.Done():
						return
					}
				}
				m = sseMsg{}
			case strings.HasPrefix(line, "event: "):
				m.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				m.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return out
}

// waitSSE reads msgs until match returns true, failing after timeout.
func waitSSE(t *testing.T, msgs <-chan sseMsg, timeout time.Duration, what string, match func(sseMsg) bool) sseMsg {
	t.Helper()
	deadline := time.After(timeout)
	var last sseMsg
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("stream ended before %s (last %s %.300s)", what, last.event, last.data)
			}
			last = m
			if match(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s within %v (last %s %.300s)", what, timeout, last.event, last.data)
		}
	}
}

// stateIs matches an `event: state` whose game state satisfies ok.
func stateIs(t *testing.T, ok func(game.Snapshot) bool) func(sseMsg) bool {
	return func(m sseMsg) bool {
		if m.event != "state" {
			return false
		}
		var s game.Snapshot
		if err := json.Unmarshal([]byte(m.data), &s); err != nil {
			t.Errorf("bad state %.200q: %v", m.data, err)
			return false
		}
		return ok(s)
	}
}

// tapAnswer is one answered tap of tapLoad.
type tapAnswer struct {
	code int
	ev   game.TapEvent // set on 202
}

// tapLoad taps from workers goroutines, spreading players over bases,
// until stop is called, which returns every answer (requests that got none
// are left out).
func tapLoad(bases []string, players []joined, workers int) (stop func() []tapAnswer) {
	var (
		mu     sync.Mutex
		out    []tapAnswer
		wg     sync.WaitGroup
		done   = make(chan struct{})
		client = &http.Client{Timeout: 10 * time.Second}
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				p := players[(w+n*workers)%len(players)]
				req, _ := http.NewRequest("POST", bases[(w+n)%len(bases)]+"/api/tap", nil)
				req.Header.Set("Authorization", "Bearer "+p.Token)
				res, err := client.Do(req)
				if err != nil {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				a := tapAnswer{code: res.StatusCode}
				var tr struct {
					TapEvent game.TapEvent `json:"tapEvent"`
				}
				if err := json.NewDecoder(res.Body).Decode(&tr); err == nil {
					a.ev = tr.TapEvent
				}
				res.Body.Close()
				mu.Lock()
				out = append(out, a)
				mu.Unlock()
				if a.code != http.StatusAccepted {
					time.Sleep(2 * time.Millisecond)
				}
			}
		}()
	}
	return func() []tapAnswer {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return out
	}
}

// ackedIDs are the events of the 202 answers among answers (id -> player id).
func ackedIDs(answers []tapAnswer) map[string]string {
	ids := map[string]string{}
	for _, a := range answers {
		if a.code == http.StatusAccepted && a.ev.ID != "" {
			ids[a.ev.ID] = a.ev.UserID
		}
	}
	return ids
}

// checkExact fails unless every acknowledged tap is in the topic and the
// store counts exactly what the topic holds, in total and per player.
func checkExact(t *testing.T, base string, brokers []string, acked map[string]string, players []joined) {
	t.Helper()
	ids := make([]string, len(players))
	byID := map[string]joined{}
	for i, p := range players {
		ids[i], byID[p.User.ID] = p.User.ID, p
	}
	total := testenv.CheckAgainstTopic(t, brokers, maps.Keys(acked),
		func() game.State { return state(t, base).GameState }, ids,
		func(id string) int64 {
			var again joined
			if code, _, body := call(t, "POST", base+"/api/join", byID[id].Token, "", &again); code != 200 {
				t.Fatalf("rejoin: %d %s", code, body)
			}
			return again.User.TapCount
		})
	t.Logf("%d taps in the topic (%d of them acknowledged under load), every one counted once", total, len(acked))
}

// owned returns the partitions each node's consumer owns, and whether
// together they own each of n partitions exactly once (during a rebalance
// they may not for a moment: callers poll).
func owned(n int, nodes ...*app.Main) ([][]int32, bool) {
	seen := map[int32]int{}
	out := make([][]int32, len(nodes))
	for i, node := range nodes {
		out[i] = slices.Sorted(maps.Keys(node.Consumer().Lag()))
		for _, p := range out[i] {
			seen[p]++
		}
	}
	for _, c := range seen {
		if c > 1 {
			return out, false
		}
	}
	return out, len(seen) == n
}

// Three instances share one redis-server and one broker: teams stay
// balanced over joins on every instance, taps on one instance show live on
// another's stream, the consumer group spreads the partitions, and when an
// instance goes away the others take over its partitions with exact counts
// and its players drop out of "online".
func TestThreeInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const parts = 6
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, parts, stream.Topic)
	window := 2 * time.Second
	tune := func(m *app.Main) {
		m.StoreOptions = store.Options{OnlineWindow: window}
		m.HubOptions = live.Options{TouchInterval: 300 * time.Millisecond, IdleRefresh: 200 * time.Millisecond}
	}
	n1, n2, n3 := startNode(t, r, k, nil, tune), startNode(t, r, k, nil, tune), startNode(t, r, k, nil, tune)
	nodes := []*app.Main{n1, n2, n3}

	// The group spreads the six partitions, two per instance.
	start := time.Now()
	testenv.Eventually(t, 20*time.Second, func() string {
		own, ok := owned(parts, nodes...)
		for _, o := range own {
			ok = ok && len(o) == parts/3
		}
		if !ok {
			return fmt.Sprintf("owned %v", own)
		}
		return ""
	})
	own, _ := owned(parts, nodes...)
	t.Logf("partitions after %v: %v", time.Since(start).Round(time.Millisecond), own)

	// 30 concurrent joins, 10 on each instance: 15 per team.
	players := make([]joined, 30)
	var wg sync.WaitGroup
	for i := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			players[i] = join(t, nodes[i%3].URL(), fmt.Sprintf("multi%d", i))
		}()
	}
	wg.Wait()
	joinedAt := time.Now()
	teams := map[game.Team]int{}
	for _, p := range players {
		teams[p.User.Team]++
	}
	if teams[game.Blue] != 15 || teams[game.Red] != 15 {
		t.Fatalf("teams after 30 joins over 3 instances: %v", teams)
	}
	if s := state(t, n3.URL()); s.GameState.ActiveUsers != 30 || s.GameState.BlueOnline != 15 {
		t.Fatalf("online after joins: %+v", s.GameState)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Instance 3's JSON stream sees taps sent to instance 1, live.
	events := sseStream(t, ctx, n3.URL()+"/events?format=json", "")
	waitSSE(t, events, 5*time.Second, "first state", stateIs(t, func(game.Snapshot) bool { return true }))
	for range 5 {
		if code, _, body := call(t, "POST", n1.URL()+"/api/tap", players[2].Token, "", nil); code != 202 {
			t.Fatalf("tap: %d %s", code, body)
		}
	}
	sent := time.Now()
	waitSSE(t, events, 5*time.Second, "5 taps on instance 3's stream", stateIs(t, func(s game.Snapshot) bool {
		return s.GameState.TotalTaps == 5
	}))
	t.Logf("taps on instance 1 reached instance 3's SSE client in %v", time.Since(sent).Round(time.Millisecond))

	// Presence: player 0 is live on instance 1, player 1 on instance 2
	// (and never taps); players 2..11 tap; the rest go idle.
	hold1 := sseStream(t, ctx, n1.URL()+"/events", players[0].Token)
	hold2 := sseStream(t, ctx, n2.URL()+"/events", players[1].Token)
	for _, h := range []<-chan sseMsg{hold1, hold2} {
		waitSSE(t, h, 5*time.Second, "page stream", func(m sseMsg) bool { return m.event == "state" })
	}
	go func() {
		for range hold1 { // keep reading, or the server drops a stuck client
		}
	}()
	bye2 := make(chan bool, 1)
	go func() {
		saw := false
		for m := range hold2 {
			saw = saw || m.event == "bye"
		}
		bye2 <- saw
	}()
	tappers := players[2:12]
	stopLoad := tapLoad([]string{n1.URL(), n2.URL()}, tappers, 6)

	// Past the window after the joins, online = the two live players and
	// the tappers.
	time.Sleep(time.Until(joinedAt.Add(window + 300*time.Millisecond)))
	waitSSE(t, events, 5*time.Second, "12 online", stateIs(t, func(s game.Snapshot) bool {
		return s.GameState.ActiveUsers == 12
	}))

	// Instance 2 goes away under load; 1 and 3 take over its partitions.
	time.Sleep(300 * time.Millisecond)
	closed := time.Now()
	if err := n2.Close(); err != nil {
		t.Fatalf("close instance 2: %v", err)
	}
	t.Logf("instance 2 closed in %v", time.Since(closed).Round(time.Millisecond))
	testenv.Eventually(t, 20*time.Second, func() string {
		if own, ok := owned(parts, n1, n3); !ok || len(own[0]) != parts/2 || len(own[1]) != parts/2 {
			return fmt.Sprintf("owned %v", own)
		}
		return ""
	})
	own, _ = owned(parts, n1, n3)
	t.Logf("partitions %v after instance 2 left (%v)", own, time.Since(closed).Round(time.Millisecond))
	// Taps on the survivors are still counted.
	time.Sleep(500 * time.Millisecond)
	acked := ackedIDs(stopLoad())
	stopped := time.Now()
	if len(acked) < 50 {
		t.Fatalf("only %d taps acknowledged", len(acked))
	}
	checkExact(t, n3.URL(), k.Addrs(), acked, players)

	// Player 1's only live connection was on instance 2: it drops out of
	// "online" after the window, seen live on instance 3's stream; player 0
	// (live on instance 1) stays.
	m := waitSSE(t, events, window+5*time.Second, "only player 0 online", stateIs(t, func(s game.Snapshot) bool {
		return s.GameState.ActiveUsers == 1
	}))
	var s game.Snapshot
	_ = json.Unmarshal([]byte(m.data), &s)
	if len(s.Users) != 1 || s.Users[0].ID != players[0].User.ID {
		t.Fatalf("online: %+v", s.Users)
	}
	t.Logf("presence healed %v after the last tap", time.Since(stopped).Round(time.Millisecond))
	// Instance 2's page stream was told to reconnect.
	if !<-bye2 {
		t.Fatal("instance 2's live client got no bye")
	}
}
