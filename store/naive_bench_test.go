package store_test

// The naive approach beside the real one: the Next.js game this replaces
// counted each tap with a read-modify-write of the player's JSON and two
// INCRs, then read the whole game state (HGETALL game:users) and sent it to
// every live client — per tap. tapwars applies batches aggregated per player
// with one Lua script and broadcasts one small snapshot per change.
//
//	go test -run '^$' -bench Naive -benchtime 3x ./store

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/store"
)

// fakeClients stands for the live connections: a broadcast copies the frame
// into each client's buffer, as a socket write would copy it to the kernel.
type fakeClients struct {
	mu   sync.Mutex
	bufs []bytes.Buffer
}

func newFakeClients(n int) *fakeClients { return &fakeClients{bufs: make([]bytes.Buffer, n)} }

func (f *fakeClients) send(frame []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.bufs {
		f.bufs[i].Reset()
		f.bufs[i].Write(frame)
	}
}

// naiveTap is one tap the old way: HGET, decode, tapCount+1, encode, HSET,
// INCR team score, INCR total.
func naiveTap(ctx context.Context, c *redis.Client, id string) error {
	raw, err := c.HGet(ctx, store.KeyUsers, id).Bytes()
	if err != nil {
		return err
	}
	var u game.User
	if err := json.Unmarshal(raw, &u); err != nil {
		return err
	}
	u.TapCount++
	raw, _ = json.Marshal(u)
	if err := c.HSet(ctx, store.KeyUsers, id, raw).Err(); err != nil {
		return err
	}
	if err := c.IncrBy(ctx, "game:team:"+string(u.Team)+":score", 1).Err(); err != nil {
		return err
	}
	return c.IncrBy(ctx, store.KeyTotalTaps, 1).Err()
}

// naiveBroadcast is the old game's getGameState per tap: every user, the
// scores, a leaderboard sorted in memory, encoded and sent to every client.
func naiveBroadcast(ctx context.Context, c *redis.Client, clients *fakeClients) error {
	all, err := c.HGetAll(ctx, store.KeyUsers).Result()
	if err != nil {
		return err
	}
	scores, err := c.MGet(ctx, store.KeyBlueScore, store.KeyRedScore, store.KeyTotalTaps).Result()
	if err != nil {
		return err
	}
	users := make([]game.User, 0, len(all))
	for _, raw := range all {
		var u game.User
		if json.Unmarshal([]byte(raw), &u) == nil {
			users = append(users, u)
		}
	}
	sort.Slice(users, func(i, j int) bool { return users[i].TapCount > users[j].TapCount })
	frame, err := json.Marshal(map[string]any{"gameState": scores, "users": users, "leaderboard": users[:min(10, len(users))]})
	if err != nil {
		return err
	}
	clients.send(frame)
	return nil
}

// BenchmarkNaive compares, with 1,000 players and 100 live clients, the taps
// per second the old per-tap read-modify-write + per-tap broadcast reaches
// (16 concurrent requests, as a Node server interleaves them) with tapwars'
// batched apply + one broadcast per applied batch (the real hub broadcasts
// even less: at most 20 times a second). One iteration is 2,000 naive taps
// and 200,000 batched taps.
func BenchmarkNaive(b *testing.B) {
	const players, clients, naivePerIter, realPerIter, batch = 1000, 100, 2000, 200000, 5000
	_, c := benchRedis(b)
	st := store.New(c)
	ids := seedPlayers(b, c, players)
	ctx := context.Background()
	fc := newFakeClients(clients)
	rng := rand.New(rand.NewPCG(3, 4))

	var naiveDur, realDur time.Duration
	var offset int64
	b.ResetTimer()
	for range b.N {
		// Naive.
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 9))
				for next.Add(1) <= naivePerIter {
					if err := naiveTap(ctx, c, ids[r.IntN(len(ids))]); err != nil {
						b.Error(err)
						return
					}
					if err := naiveBroadcast(ctx, c, fc); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		naiveDur += time.Since(start)

		// Real: batches aggregated per player, one Lua script each, one
		// snapshot read + encode + send per batch.
		start = time.Now()
		for done := 0; done < realPerIter; done += batch {
			idx := map[string]int{}
			var taps []game.PlayerTaps
			for range batch {
				id := ids[rng.IntN(len(ids))]
				if j, ok := idx[id]; ok {
					taps[j].Count++
				} else {
					idx[id] = len(taps)
					taps = append(taps, game.PlayerTaps{UserID: id, Count: 1})
				}
			}
			res, err := st.Apply(ctx, game.Batch{Topic: "game-taps", Partition: 0, From: offset, Next: offset + batch, Start: true, Taps: taps, Now: time.Now().UnixMilli()})
			if err != nil || res.Applied != batch {
				b.Fatalf("apply %+v %v", res, err)
			}
			offset += batch
			snap, err := st.Snapshot(ctx, 10, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			frame, _ := json.Marshal(snap)
			fc.send(frame)
		}
		realDur += time.Since(start)
	}
	b.StopTimer()
	naiveRate := float64(naivePerIter*b.N) / naiveDur.Seconds()
	realRate := float64(realPerIter*b.N) / realDur.Seconds()
	b.ReportMetric(naiveRate, "naive-taps/s")
	b.ReportMetric(realRate, "batched-taps/s")
	b.ReportMetric(realRate/naiveRate, "ratio")
}
