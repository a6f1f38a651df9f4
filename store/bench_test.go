package store_test

// Benchmarks of the consumer's apply step against a real redis-server.
//
//	go test -run '^$' -bench Apply -benchtime 3x ./store
//
// The redis-server is the test one (internal/testenv) switched to AOF
// everysec, as the embedded redis-server and a usual production Redis run.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/store"
)

// benchRedis starts a redis-server for a benchmark with AOF everysec.
func benchRedis(b *testing.B) (*testenv.Redis, *redis.Client) {
	b.Helper()
	r := testenv.StartRedis(b)
	c := r.Client()
	if err := c.ConfigSet(context.Background(), "appendfsync", "everysec").Err(); err != nil {
		b.Fatal(err)
	}
	return r, c
}

// seedPlayers writes n players straight into game:users (the JSON Join
// writes), pipelined, and returns their ids: random hex like Join's (ids
// with a long common prefix make Redis' sorted sets compare much longer).
func seedPlayers(b *testing.B, c *redis.Client, n int) []string {
	b.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	now := time.Now().UnixMilli()
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	for lo := 0; lo < n; lo += 10000 {
		hi := min(lo+10000, n)
		args := make([]any, 0, 2*(hi-lo))
		for i := lo; i < hi; i++ {
			ids[i] = fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64()) // random, like store.newID
			team := game.Blue
			if i%2 == 1 {
				team = game.Red
			}
			args = append(args, ids[i], fmt.Sprintf(`{"id":"%s","username":"p%d","team":"%s","joinedAt":%d,"sessionId":"%032x","tapCount":0}`, ids[i], i, team, now, i))
		}
		if err := c.HSet(ctx, store.KeyUsers, args...).Err(); err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

// applySecond is one second of traffic as the consumer sees it: rate taps of
// one tap each, from players drawn uniformly out of ids, spread over
// partitions by player, cut into batches of at most maxBatch records and
// aggregated per player. It returns the batches of each partition.
func applySecond(ids []string, rate, partitions, maxBatch int, rng *rand.Rand) [][][]game.PlayerTaps {
	perPart := make([][]string, partitions)
	for range rate {
		i := rng.IntN(len(ids))
		p := i % partitions
		perPart[p] = append(perPart[p], ids[i])
	}
	out := make([][][]game.PlayerTaps, partitions)
	for p, recs := range perPart {
		for lo := 0; lo < len(recs); lo += maxBatch {
			hi := min(lo+maxBatch, len(recs))
			idx := map[string]int{}
			var taps []game.PlayerTaps
			for _, id := range recs[lo:hi] {
				if j, ok := idx[id]; ok {
					taps[j].Count++
				} else {
					idx[id] = len(taps)
					taps = append(taps, game.PlayerTaps{UserID: id, Count: 1})
				}
			}
			out[p] = append(out[p], taps)
		}
	}
	return out
}

// BenchmarkApply applies one second of 500,000 taps (one tap per record,
// 6 partitions applied concurrently as the consumer's claims do, batches of
// up to 5,000 records aggregated per player) per iteration, with 1,000 and
// with 100,000 distinct players tapping in that second.
func BenchmarkApply(b *testing.B) {
	for _, players := range []int{1000, 100000} {
		b.Run("players="+strconv.Itoa(players), func(b *testing.B) {
			benchApply(b, players, 500000, 6, 5000)
		})
	}
}

func benchApply(b *testing.B, players, rate, partitions, maxBatch int) {
	_, c := benchRedis(b)
	st := store.New(c)
	ids := seedPlayers(b, c, players)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	seconds := make([][][][]game.PlayerTaps, b.N)
	entries := 0
	for i := range seconds {
		seconds[i] = applySecond(ids, rate, partitions, maxBatch, rng)
		for _, bs := range seconds[i] {
			for _, t := range bs {
				entries += len(t)
			}
		}
	}
	next := make([]int64, partitions)
	resetServerStats(b, c)
	b.ResetTimer()
	start := time.Now()
	for _, sec := range seconds {
		var wg sync.WaitGroup
		for p, batches := range sec {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, taps := range batches {
					var n int64
					for _, t := range taps {
						n += t.Count
					}
					from := next[p]
					res, err := st.Apply(ctx, game.Batch{Topic: "game-taps", Partition: int32(p), From: from, Next: from + n, Start: true, Taps: taps, Now: time.Now().UnixMilli()})
					if err != nil || res.Status != game.Applied || res.Applied != n {
						b.Errorf("apply: %+v %v", res, err)
						return
					}
					next[p] = from + n
				}
			}()
		}
		wg.Wait()
	}
	el := time.Since(start)
	b.StopTimer()
	total, err := c.Get(ctx, store.KeyTotalTaps).Int64()
	if err != nil || total != int64(rate*b.N) {
		b.Fatalf("total %d %v, want %d", total, err, rate*b.N)
	}
	b.ReportMetric(float64(rate*b.N)/el.Seconds(), "taps/s")
	reportServerMicros(b, c, "server-us/batch")
	b.ReportMetric(float64(entries)/el.Seconds(), "entries/s")
}

// BenchmarkApplyOneTap applies batches of one tap, one after the other, as
// the consumer does when the game is quiet: the per-batch costs (the
// offset check, the type checks before the first write) weigh most there.
func BenchmarkApplyOneTap(b *testing.B) {
	_, c := benchRedis(b)
	st := store.New(c)
	ids := seedPlayers(b, c, 1000)
	ctx := context.Background()
	resetServerStats(b, c)
	var next int64
	for i := 0; b.Loop(); i++ {
		res, err := st.Apply(ctx, game.Batch{Topic: "game-taps", From: next, Next: next + 1, Start: true,
			Taps: []game.PlayerTaps{{UserID: ids[i%len(ids)], Count: 1}}, Now: time.Now().UnixMilli()})
		if err != nil || res.Status != game.Applied {
			b.Fatalf("apply: %+v %v", res, err)
		}
		next++
	}
	reportServerMicros(b, c, "server-us/batch")
}

func resetServerStats(b *testing.B, c *redis.Client) {
	b.Helper()
	if err := c.ConfigResetStat(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
}

// evalStats is Redis' own time per script call (INFO commandstats): what
// the scripts cost the server, apart from the round trips and the
// benchmark's client.
var evalStats = regexp.MustCompile(`cmdstat_evalsha:calls=\d+,usec=\d+,usec_per_call=([\d.]+)`)

func reportServerMicros(b *testing.B, c *redis.Client, unit string) {
	b.Helper()
	m := evalStats.FindStringSubmatch(c.Info(context.Background(), "commandstats").Val())
	if m == nil {
		b.Fatal("no evalsha in INFO commandstats")
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	b.ReportMetric(v, unit)
}
