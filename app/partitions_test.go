package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/stream"
)

// growTopic adds partitions to game-taps as an operator would
// (kafka-topics.sh --alter --partitions n).
func growTopic(t *testing.T, b testenv.Broker, n int32) {
	t.Helper()
	if err := brokerAdmin(t, b).CreatePartitions(stream.Topic, n, nil, false); err != nil {
		t.Fatalf("grow %s to %d partitions: %v", stream.Topic, n, err)
	}
	t.Logf("%s grown to %d partitions", stream.Topic, n)
}

// waitMarked waits until tapwars marked n partitions for the current round.
func waitMarked(t *testing.T, r *testenv.Redis, n int32) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, func() string {
		v, _ := r.Client().HGet(context.Background(), store.KeyPartitions, "marked").Result()
		if v != strconv.Itoa(int(n)) {
			return fmt.Sprintf("marked %q, want %d", v, n)
		}
		return ""
	})
}

// taps202 sums the taps answered 202 per player.
func taps202(answers []tapAnswer) map[string]int64 {
	out := map[string]int64{}
	for _, a := range answers {
		if a.code == http.StatusAccepted {
			out[a.ev.UserID] += int64(a.ev.Taps())
		}
	}
	return out
}

// waitCounted waits until Redis counts exactly want per player in the
// current round (and no other player has taps), failing at once on more.
func waitCounted(t *testing.T, r *testenv.Redis, want map[string]int64) {
	t.Helper()
	var sum int64
	for _, n := range want {
		sum += n
	}
	testenv.Eventually(t, 60*time.Second, func() string {
		ctx := context.Background()
		total, _ := r.Client().Get(ctx, store.KeyTotalTaps).Int64()
		if total > sum {
			t.Fatalf("total %d, but %d taps were answered 202: counted taps twice", total, sum)
		}
		if total != sum {
			return fmt.Sprintf("total %d, want %d (taps answered 202)", total, sum)
		}
		for id, n := range want {
			got, _ := r.Client().ZScore(ctx, store.KeyLeaderboard, id).Result()
			if int64(got) != n {
				return fmt.Sprintf("player %s has %v taps, want %d", id, got, n)
			}
		}
		return ""
	})
}

// Growing game-taps mid-game loses nothing: in open play, after a reset and
// during a timed round, partitions are added while players tap; every tap
// answered 202 is counted once, players who join after a growth land on
// the new partitions and count too, and a rebuild of Redis from the log
// gives the same counts (a player's join and taps stay on one partition).
func TestGrowingPartitionsLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	testenv.EachKafka(t, testGrowingPartitions)
}

func testGrowingPartitions(t *testing.T, kind string) {
	r, k := testenv.StartRedis(t), testenv.StartBroker(t, kind, 2, stream.Topic)
	env := map[string]string{"ADMIN_TOKEN": admToken, "TAP_RATE_LIMIT": "0", "JOIN_RATE_LIMIT": "0", "JOINS_PER_SECOND": "0", "TAP_TIMEOUT": "2s"}
	n1, n2 := startApp(t, r, k, env, nil), startApp(t, r, k, env, nil)
	bases := []string{n1.URL(), n2.URL()}
	joinAll := func(prefix string, n int) []joined {
		out := make([]joined, n)
		for i := range out {
			out[i] = join(t, bases[i%2], fmt.Sprintf("%s%d", prefix, i))
		}
		return out
	}
	// joinOnNew joins players until want of them are pinned to partitions
	// from..to-1 (the new ones), at most 60.
	joinOnNew := func(prefix string, from int32, want int) []joined {
		var out []joined
		on := 0
		for i := 0; on < want; i++ {
			if i == 60 {
				t.Fatalf("60 players joined, %d of them on partitions >= %d", on, from)
			}
			j := join(t, bases[i%2], fmt.Sprintf("%s%d", prefix, i))
			if p, ok := game.IDPartition(j.User.ID); ok && p >= from {
				on++
			}
			out = append(out, j)
		}
		return out
	}
	players := joinAll("first", 10)
	waitMarked(t, r, 2)

	// Open play (round 0): grow 2 -> 4 while tapping; newcomers tap too.
	stop := tapLoad(bases, players, 6)
	time.Sleep(300 * time.Millisecond)
	growTopic(t, k, 4)
	waitMarked(t, r, 4)
	late := joinOnNew("second", 2, 4)
	stopLate := tapLoad(bases, late, 4)
	time.Sleep(1500 * time.Millisecond)
	answers := append(stop(), stopLate()...)
	players = append(players, late...)
	waitCounted(t, r, taps202(answers))
	t.Logf("open play: %d answers, every 202 counted", len(answers))

	// After a reset (round 1): grow 4 -> 6 while tapping.
	if code, body := admin(t, "POST", bases[0]+"/admin/reset", "", nil); code != 200 {
		t.Fatalf("reset: %d %s", code, body)
	}
	stop = tapLoad(bases, players, 6)
	time.Sleep(300 * time.Millisecond)
	growTopic(t, k, 6)
	waitMarked(t, r, 6)
	late = joinOnNew("third", 4, 4)
	stopLate = tapLoad(bases, late, 4)
	time.Sleep(1500 * time.Millisecond)
	answers = append(stop(), stopLate()...)
	players = append(players, late...)
	round1 := taps202(answers)
	waitCounted(t, r, round1)
	t.Logf("after a reset: %d answers, every 202 counted", len(answers))

	// During a timed round (round 2): grow 6 -> 8 in play.
	stop = tapLoad(bases, players, 6)
	rs := startRound(t, bases[0], `{"seconds": 5, "countdown": 1}`)
	announced := time.Now()
	time.Sleep(time.Until(time.UnixMilli(rs.StartsAt).Add(500 * time.Millisecond)))
	growTopic(t, k, 8)
	waitMarked(t, r, 8)
	late = joinOnNew("fourth", 6, 3)
	stopLate = tapLoad(bases, late, 4)
	time.Sleep(time.Until(time.UnixMilli(rs.EndsAt).Add(500 * time.Millisecond)))
	answers = append(stop(), stopLate()...)
	players = append(players, late...)
	final := finalRound(t, bases[1], rs.Number, 60*time.Second)
	checkRoundExact(t, final, announced, answers)
	onNew := 0
	for _, p := range late {
		if part, ok := game.IDPartition(p.User.ID); ok && part >= 6 {
			onNew++
		}
	}
	t.Logf("timed round: %+v; %d of %d late players on partitions 6-7", final, onNew, len(late))

	// Redis loses everything: the rebuild from the log gives the same
	// result and the same counts per player.
	before := map[string]float64{}
	for _, p := range players {
		before[p.User.ID], _ = r.Client().ZScore(context.Background(), store.KeyLeaderboard, p.User.ID).Result()
	}
	r.Client().FlushAll(context.Background())
	again := finalRound(t, bases[0], rs.Number, 60*time.Second)
	if again.Blue != final.Blue || again.Red != final.Red {
		t.Fatalf("after a rebuild: %+v, was %+v", again, final)
	}
	testenv.Eventually(t, 60*time.Second, func() string {
		for id, n := range before {
			if got, _ := r.Client().ZScore(context.Background(), store.KeyLeaderboard, id).Result(); got != n {
				return fmt.Sprintf("player %s: %v taps after the rebuild, %v before", id, got, n)
			}
		}
		return ""
	})
}
