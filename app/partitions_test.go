package app_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/app"
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

// brokerPartitions lists game-taps' partitions.
func brokerPartitions(t *testing.T, b testenv.Broker) []int32 {
	t.Helper()
	md, err := brokerAdmin(t, b).DescribeTopics([]string{stream.Topic})
	if err != nil || len(md) != 1 || md[0].Err != sarama.ErrNoError {
		t.Fatalf("describe %s: %v %+v", stream.Topic, err, md)
	}
	var out []int32
	for _, p := range md[0].Partitions {
		out = append(out, p.ID)
	}
	return out
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
	nodes := []*app.Main{startApp(t, r, k, env, nil), startApp(t, r, k, env, nil)}
	urls := func() []string {
		var out []string
		for _, n := range nodes {
			out = append(out, n.URL())
		}
		return out
	}
	// joinOnNew joins players until want of them are pinned to partitions
	// from on (the new ones), at most 60.
	joinOnNew := func(prefix string, from int32, want int) []joined {
		var out []joined
		on := 0
		for i := 0; on < want; i++ {
			if i == 60 {
				t.Fatalf("60 players joined, %d of them on partitions >= %d", on, from)
			}
			j := join(t, nodes[i%len(nodes)].URL(), fmt.Sprintf("%s%d", prefix, i))
			if p, ok := game.IDPartition(j.User.ID); ok && p >= from {
				on++
			}
			out = append(out, j)
		}
		return out
	}
	// grow adds partitions while players tap, then rolls the instances as
	// a deploy would: a new one (which sees every partition from its start)
	// joins, newcomers join, everyone taps through all of them, and the
	// oldest instance leaves. It returns the answers and the newcomers.
	grow := func(players []joined, to int32, during func()) ([]tapAnswer, []joined) {
		stop := tapLoad(urls(), players, 6)
		time.Sleep(300 * time.Millisecond)
		if during != nil {
			during()
		}
		from := int32(len(brokerPartitions(t, k)))
		growTopic(t, k, to)
		waitMarked(t, r, to)
		nodes = append(nodes, startApp(t, r, k, env, nil))
		late := joinOnNew(fmt.Sprintf("p%d-", to), from, 3)
		stopLate := tapLoad(urls(), append(slices.Clone(players), late...), 4)
		time.Sleep(1500 * time.Millisecond)
		answers := append(stop(), stopLate()...)
		_ = nodes[0].Close()
		nodes = nodes[1:]
		return answers, late
	}
	players := make([]joined, 10)
	for i := range players {
		players[i] = join(t, nodes[i%2].URL(), fmt.Sprintf("first%d", i))
	}
	waitMarked(t, r, 2)

	// Open play (round 0): 2 -> 4 partitions.
	answers, late := grow(players, 4, nil)
	players = append(players, late...)
	waitCounted(t, r, taps202(answers))
	t.Logf("open play: %d answers, every 202 counted", len(answers))

	// After a reset (round 1): 4 -> 6.
	if code, body := admin(t, "POST", nodes[0].URL()+"/admin/reset", "", nil); code != 200 {
		t.Fatalf("reset: %d %s", code, body)
	}
	answers, late = grow(players, 6, nil)
	players = append(players, late...)
	waitCounted(t, r, taps202(answers))
	t.Logf("after a reset: %d answers, every 202 counted", len(answers))

	// During a timed round (round 2): 6 -> 8 in play.
	var (
		rs        game.RoundState
		announced time.Time
	)
	answers, late = grow(players, 8, func() {
		rs = startRound(t, nodes[0].URL(), `{"seconds": 10, "countdown": 1}`)
		announced = time.Now()
		time.Sleep(time.Until(time.UnixMilli(rs.StartsAt).Add(300 * time.Millisecond)))
	})
	players = append(players, late...)
	if time.Now().UnixMilli() >= rs.EndsAt {
		t.Fatalf("the round ended before the growth was done (a slow machine): %+v", rs)
	}
	time.Sleep(time.Until(time.UnixMilli(rs.EndsAt).Add(500 * time.Millisecond)))
	final := finalRound(t, nodes[0].URL(), rs.Number, 60*time.Second)
	checkRoundExact(t, final, announced, answers)
	t.Logf("timed round: %+v", final)
	bases := urls()

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
