package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapwars/tapwars/app"
	"github.com/tapwars/tapwars/auth"
	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/stream"
)

// history makes a game with several rounds, a kick and an import in its
// log, and returns the players still in the game (the kicked one is not).
func history(t *testing.T, base string) []joined {
	t.Helper()
	var players []joined
	for i := range 7 {
		players = append(players, join(t, base, fmt.Sprintf("p%d", i)))
	}
	for i, p := range players {
		tapN(t, base, p, i+1)
	}
	kicked := players[6]
	players = players[:6]
	if code, body := admin(t, "POST", base+"/admin/kick/"+kicked.User.ID, "", nil); code != 200 {
		t.Fatalf("kick: %d %s", code, body)
	}
	if code, body := admin(t, "POST", base+"/admin/reset", "", nil); code != 200 {
		t.Fatalf("reset: %d %s", code, body)
	}
	for _, p := range players {
		tapN(t, base, p, 3)
	}
	waitRound(t, base, 1, 18)
	code, _, raw := admReq(t, nil, "GET", base+"/admin/export", "", bearer)
	if code != 200 {
		t.Fatalf("export: %d", code)
	}
	tapN(t, base, players[0], 9) // undone by the import
	if code, body := admin(t, "POST", base+"/admin/import", raw, nil); code != 200 {
		t.Fatalf("import: %d %s", code, body)
	}
	waitRound(t, base, 2, 18)
	for _, p := range players {
		tapN(t, base, p, 2)
	}
	waitRound(t, base, 2, 30)
	if code, body := admin(t, "POST", base+"/admin/reset", "", nil); code != 200 {
		t.Fatalf("second reset: %d %s", code, body)
	}
	waitRound(t, base, 3, 0)
	return players
}

func waitRound(t *testing.T, base string, round, total int64) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() string {
		if gs := state(t, base).GameState; gs.Round != round || gs.TotalTaps != total {
			return fmt.Sprintf("state %+v, want round %d with %d taps", gs, round, total)
		}
		return ""
	})
}

// roundTaps reads this round's taps per player from the topic, after
// checking that every acknowledged tap is in it.
func roundTaps(t *testing.T, brokers []string, acked map[string]string) map[string]int64 {
	t.Helper()
	ids, taps := testenv.ReadTopic(t, brokers)
	testenv.InTopic(t, ids, maps.Keys(acked))
	return taps
}

// checkProjection waits until the instance is ready (not rebuilding) and
// its state equals the log: every player who got 201 exists with their
// team and this round's taps, team scores and total are their sums, the
// round and the kicked player are as they were.
func checkProjection(t *testing.T, base string, brokers []string, acked map[string]string, players []joined, round int64, kicked int) store.Export {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() string {
		if code, body := readyz(t, base); code != 200 {
			return fmt.Sprintf("readyz %d %v", code, body)
		}
		return ""
	})
	want := roundTaps(t, brokers, acked)
	var ex store.Export
	testenv.Eventually(t, 20*time.Second, func() string {
		code, _, raw := admReq(t, nil, "GET", base+"/admin/export", "", bearer)
		if code != 200 {
			return fmt.Sprintf("export %d", code)
		}
		ex = store.Export{}
		if err := json.Unmarshal([]byte(raw), &ex); err != nil {
			t.Fatal(err)
		}
		got := map[string]game.User{}
		for _, u := range ex.Players {
			got[u.ID] = u
		}
		sums := map[game.Team]int64{}
		for _, p := range players {
			u, ok := got[p.User.ID]
			if !ok || u.Team != p.User.Team || u.Username != p.User.Username {
				return fmt.Sprintf("player %s (%s): got %+v", p.User.Username, p.User.Team, u)
			}
			if u.TapCount != want[p.User.ID] {
				return fmt.Sprintf("player %s: %d taps, the log has %d this round", p.User.Username, u.TapCount, want[p.User.ID])
			}
			sums[u.Team] += u.TapCount
		}
		if ex.BlueScore != sums[game.Blue] || ex.RedScore != sums[game.Red] || ex.TotalTaps != sums[game.Blue]+sums[game.Red] {
			return fmt.Sprintf("scores %d/%d/%d, players' sums %v", ex.BlueScore, ex.RedScore, ex.TotalTaps, sums)
		}
		if ex.Round != round || len(ex.Kicked) != kicked {
			return fmt.Sprintf("round %d, %d kicked; want %d, %d", ex.Round, len(ex.Kicked), round, kicked)
		}
		return ""
	})
	return ex
}

// Redis loses everything while taps flow (FLUSHALL; a Redis without
// persistence killed and restarted): the instance notices, says so on
// /readyz, keeps accepting joins and taps, replays the log into Redis by
// itself, and ends with exactly the state the log gives: every acknowledged
// tap counted once, every joined player with their team, the round and the
// kick as they were.
func TestRebuildAfterRedisLoss(t *testing.T) {
	for name, lose := range map[string]func(r *testenv.Redis){
		"FLUSHALL":             func(r *testenv.Redis) { r.Client().FlushAll(context.Background()) },
		"restart-without-data": func(r *testenv.Redis) { r.RestartEmpty() },
	} {
		t.Run(name, func(t *testing.T) {
			testenv.EachKafka(t, func(t *testing.T, kafka string) { testRebuildAfterRedisLoss(t, kafka, lose) })
		})
	}
}

func testRebuildAfterRedisLoss(t *testing.T, kafka string, lose func(r *testenv.Redis)) {
	r, k := testenv.StartRedis(t), testenv.StartBroker(t, kafka, 3, stream.Topic)
	m := admInstance(t, r, k, map[string]string{"TAP_RATE_LIMIT": "0"}, func(m *app.Main) {
		// Small, slowed batches: the rebuild lasts long enough to be seen.
		m.ConsumerOptions.MaxBatch = 50
		m.ConsumerOptions.BeforeApply = func(game.Batch) { time.Sleep(2 * time.Millisecond) }
	})
	base := m.URL()
	players := history(t, base)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs := sseStream(t, ctx, base+"/events?format=json", "")
	stop := tapLoad([]string{base}, players, 4)
	time.Sleep(time.Second)
	// /readyz is watched from the loss on: on a busy machine the rebuild
	// can be over before the live pages have said "catching up".
	var rebuildSeen atomic.Bool
	watching, stopWatching := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watching.Err() == nil {
			if res, err := http.Get(base + "/readyz"); err == nil {
				var body map[string]string
				if json.NewDecoder(res.Body).Decode(&body) == nil && res.StatusCode == http.StatusServiceUnavailable && strings.HasPrefix(body["state"], "rebuilding") {
					rebuildSeen.Store(true)
				}
				res.Body.Close()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	lose(r)
	// Live pages show "catching up" instead of a half-rebuilt state.
	waitSSE(t, msgs, 5*time.Second, "catching up", func(m sseMsg) bool {
		return m.event == "status" && strings.Contains(m.data, "catching up")
	})
	var late []joined
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if len(late) < 3 { // joins keep working during the rebuild
			var j joined
			if code, _, _ := call(t, "POST", base+"/api/join", "", fmt.Sprintf(`{"username":"late%d"}`, len(late)), &j); code == 201 {
				late = append(late, j)
				tapN(t, base, j, 2)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopWatching()
	<-watched
	sawRebuild := rebuildSeen.Load()
	acked := ackedIDs(stop())
	t.Logf("%d taps acknowledged under load, rebuild seen on /readyz: %v, %d joins during it", len(acked), sawRebuild, len(late))
	if len(late) == 0 || !sawRebuild {
		t.Fatalf("joins during the rebuild: %d; /readyz said rebuilding: %v", len(late), sawRebuild)
	}
	checkProjection(t, base, k.Addrs(), acked, append(players, late...), 3, 1)
}

// A replay of the whole log into an empty Redis gives exactly the live
// state (export minus its time), with rounds, a kick and an import in the
// history and taps of several rounds.
func TestReplayIntoEmptyRedisEqualsLiveState(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 3, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	base := m.URL()
	players := history(t, base)
	stop := tapLoad([]string{base}, players, 3)
	time.Sleep(time.Second)
	acked := ackedIDs(stop())
	live := checkProjection(t, base, k.Addrs(), acked, players, 3, 1)

	r2 := testenv.StartRedis(t)
	m2 := admInstance(t, r2, k, map[string]string{"KAFKA_GROUP": "replay"}, func(m *app.Main) {
		m.ConsumerOptions.MaxBatch = 7 // other batch boundaries than the live run's
	})
	replayed := checkProjection(t, m2.URL(), k.Addrs(), acked, players, 3, 1)
	// The new Redis has no record of the log's partitions: once caught up,
	// the replaying instance gives every partition the current round's
	// marker again (ledger.MarkPartitions; a duplicate marker changes
	// nothing but the offsets). Compare once both have applied the same log.
	testenv.Eventually(t, 20*time.Second, func() string {
		if r2.Client().HGet(context.Background(), store.KeyPartitions, "marked").Val() == "" {
			return "the replaying instance has not checked the partitions yet"
		}
		live = checkProjection(t, base, k.Addrs(), acked, players, 3, 1)
		replayed = checkProjection(t, m2.URL(), k.Addrs(), acked, players, 3, 1)
		if !maps.Equal(live.Offsets, replayed.Offsets) {
			return fmt.Sprintf("offsets live %v, replayed %v", live.Offsets, replayed.Offsets)
		}
		return ""
	})
	live.ExportedAt, replayed.ExportedAt = 0, 0
	a, _ := json.Marshal(live)
	b, _ := json.Marshal(replayed)
	if string(a) != string(b) {
		t.Fatalf("replayed state differs from the live one:\nlive     %s\nreplayed %s", a, b)
	}
}

// With a checkpoint in Kafka, a store that lost everything loads it and
// replays only the log after it, and ends with exactly the state of the
// log.
func TestRebuildFromCheckpoint(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 3, stream.Topic)
	var (
		mu        sync.Mutex
		recording atomic.Bool
		froms     = map[int32]int64{}
	)
	m := admInstance(t, r, k, map[string]string{"TAP_RATE_LIMIT": "0", "CHECKPOINT_INTERVAL": "1h"}, func(m *app.Main) {
		m.ConsumerOptions.BeforeApply = func(b game.Batch) {
			if recording.Load() {
				mu.Lock()
				if f, ok := froms[b.Partition]; !ok || b.From < f {
					froms[b.Partition] = b.From
				}
				mu.Unlock()
			}
		}
	})
	base := m.URL()
	players := history(t, base)
	stop := tapLoad([]string{base}, players, 3)
	time.Sleep(time.Second)
	acked := ackedIDs(stop())
	checkProjection(t, base, k.Addrs(), acked, players, 3, 1)
	ctx := context.Background()
	// The projection's offsets first, then the checkpoint: a record the
	// instance writes itself (a round marker) may be applied in between,
	// so the checkpoint written is at least as new as cp.
	cp, _, err := m.Store.TakeCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := m.Checkpointer.Take(ctx); err != nil || !ok {
		t.Fatalf("checkpoint: %v %v", ok, err)
	}
	for _, p := range players[:3] {
		tapN(t, base, p, 5) // after the checkpoint
	}
	recording.Store(true)
	r.Client().FlushAll(ctx)
	final := players[0]
	tapN(t, base, final, 1) // wakes the partition at once
	checkProjection(t, base, k.Addrs(), acked, players, 3, 1)
	mu.Lock()
	defer mu.Unlock()
	for p, from := range froms {
		if at := cp.CheckpointOffset(stream.Topic, p); from < at {
			t.Fatalf("partition %d replayed from %d, before the checkpoint's %d", p, from, at)
		}
	}
	if len(froms) == 0 {
		t.Fatal("nothing was replayed")
	}
	t.Logf("replayed from %v; the checkpoint covers %v", froms, cp.Offsets())
}

// Redis loses everything while the consumer cannot replay yet, and the
// instance reloads its kicked players meanwhile (any message on game:admin
// does it, and so does the reconnection after a Redis restart): the kicked
// player is still refused, where a kicked set read from the empty
// projection let their taps through with 202 for the replay to skip. A
// player who was not kicked taps on throughout (with a token of an earlier
// version, which does not carry the player, they get 503 until the replay
// knows them, never the 401 that signs a page out), and both stay so after
// the replay.
func TestKickHoldsWhileRedisIsRebuilt(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	var g gate
	m := admInstance(t, r, k, nil, gated(&g))
	t.Cleanup(g.resume)
	base := m.URL()
	a, b := join(t, base, "ann"), join(t, base, "ben")
	tapN(t, base, a, 3)
	tapN(t, base, b, 2)
	waitTotals(t, base, map[*joined]int64{&a: 3, &b: 2})
	if code, body := admin(t, "POST", base+"/admin/kick/"+a.User.ID, "", nil); code != 200 && code != 202 {
		t.Fatalf("kick: %d %s", code, body)
	}
	waitTotals(t, base, map[*joined]int64{&b: 2}) // the kick is applied

	g.pause()
	ctx := context.Background()
	if err := r.Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Client().Publish(ctx, store.ChannelAdmin, "kick").Err(); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if code, _, body := call(t, "POST", base+"/api/tap", a.Token, "", nil); code != 401 {
			t.Fatalf("the kicked player's tap while Redis is rebuilt: %d %s", code, body)
		}
	}
	tapN(t, base, b, 1)
	// A token of an earlier version does not carry the player: until the
	// replay gets to ben, 503 (try again), never 401 (which signs out).
	v1 := auth.NewSigner([]byte("test-secret-0123456789")).Sign(b.User.ID)
	if code, _, body := call(t, "POST", base+"/api/tap", v1, "", nil); code != 503 {
		t.Fatalf("ben's v1 token while Redis is rebuilt: %d %s, want 503", code, body)
	}
	g.resume()
	waitTotals(t, base, map[*joined]int64{&b: 3})
	if code, _, body := call(t, "POST", base+"/api/tap", a.Token, "", nil); code != 401 {
		t.Fatalf("the kicked player's tap after the rebuild: %d %s", code, body)
	}
	if code, _, body := call(t, "POST", base+"/api/tap", v1, "", nil); code != 202 {
		t.Fatalf("ben's v1 token after the rebuild: %d %s", code, body)
	}
}
