package stream_test

// Rebuild speed: a history of taps (count 50 each, after the players'
// joins) written straight to kfake over TCP, replayed into an empty
// redis-server, with and without a checkpoint.
//
//	go test -run TestRebuildTenMillionTaps -v ./stream
//	go test -run '^$' -bench Replay -benchtime 1x ./stream

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/ledger"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/stream"
)

// history is a topic with players' joins and taps of count 50.
type history struct {
	r     *testenv.Redis
	k     *testenv.Kafka
	st    *store.Store
	cfg   stream.Config
	ends  map[int32]int64
	taps  int64
	users int
}

func newHistory(tb testing.TB, players, records int) *history {
	tb.Helper()
	h := &history{r: testenv.StartRedis(tb), k: testenv.StartKafka(tb, 6, stream.Topic), users: players}
	c := h.r.Client()
	if err := c.ConfigSet(context.Background(), "appendfsync", "everysec").Err(); err != nil {
		tb.Fatal(err)
	}
	h.st = store.New(c)
	h.cfg = stream.Config{Brokers: h.k.Addrs()}
	prod, err := stream.NewProducer(h.cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer prod.Close()
	ctx := context.Background()
	ids := make([]string, players)
	batch := make([]stream.Record, 0, 5000)
	for i := range players { // joins, as stream.Facts writes them
		ids[i] = fmt.Sprintf("%032x", i)
		team := game.Blue
		if i%2 == 1 {
			team = game.Red
		}
		u := game.User{ID: ids[i], Username: fmt.Sprintf("p%d", i), Team: team, JoinedAt: 1, SessionID: "s"}
		v, _ := stream.EncodeFact(game.Fact{Type: game.FactJoin, User: &u})
		batch = append(batch, stream.Record{Key: u.ID, Value: v, Partition: stream.ByKey, Headers: map[string]string{stream.TypeHeader: string(game.FactJoin)}})
	}
	for n := 0; n < records; n++ {
		id := ids[n%players]
		v, _ := stream.EncodeEvent(game.TapEvent{ID: strconv.Itoa(n), UserID: id, Timestamp: 1, Count: game.MaxBurst})
		batch = append(batch, stream.Record{Key: id, Value: v, Partition: stream.ByKey})
		if len(batch) == cap(batch) || n == records-1 {
			if err := prod.Produce(ctx, stream.Topic, batch...); err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	h.taps = int64(records) * game.MaxBurst
	hw, err := stream.NewWatermarks(h.cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer hw.Close()
	if h.ends, err = hw.HighWatermarks(ctx); err != nil {
		tb.Fatal(err)
	}
	return h
}

// replay runs a consumer of a new group until the store holds every
// partition up to its end and the total is right; it returns how long
// that took.
func (h *history) replay(tb testing.TB, group string, restore func(context.Context) error) time.Duration {
	tb.Helper()
	cfg := h.cfg
	cfg.Group = group
	start := time.Now()
	c, err := stream.NewConsumer(cfg, h.st, slog.New(slog.NewTextHandler(io.Discard, nil)), stream.ConsumerOptions{Restore: restore})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	defer func() { cancel(); _ = c.Close(); <-done }()
	parts := make([]int32, 0, len(h.ends))
	for p := range h.ends {
		parts = append(parts, p)
	}
	for {
		offs, err := h.st.Offsets(ctx, stream.Topic, parts)
		if err != nil {
			tb.Fatal(err)
		}
		complete := true
		for p, end := range h.ends {
			if end > 0 && offs[p] < end {
				complete = false
			}
		}
		if complete {
			break
		}
		if time.Since(start) > 5*time.Minute {
			tb.Fatalf("replay not complete after 5 minutes: %v of %v", offs, h.ends)
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	snap, err := h.st.Snapshot(ctx, 1, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	if snap.GameState.TotalTaps != h.taps {
		tb.Fatalf("replayed %d taps, the log holds %d", snap.GameState.TotalTaps, h.taps)
	}
	return took
}

// TestRebuildTenMillionTaps: 10 million taps of history (200,000 records
// of count 50 by 10,000 players) replayed into an empty Redis without a
// checkpoint (the rate is logged), then, with a checkpoint covering them,
// a wiped Redis is complete within 5 s.
func TestRebuildTenMillionTaps(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200,000 records")
	}
	records := 200_000
	if v := os.Getenv("REPLAY_RECORDS"); v != "" {
		records, _ = strconv.Atoi(v)
	}
	start := time.Now()
	h := newHistory(t, 10_000, records)
	t.Logf("history: %d records, %d taps written in %v", records, h.taps, time.Since(start))

	took := h.replay(t, "full", nil)
	t.Logf("full replay without a checkpoint: %v, %.0f records/s, %.0f taps/s", took, float64(records)/took.Seconds(), float64(h.taps)/took.Seconds())

	if _, err := stream.EnsureTopics(h.cfg, stream.Topics{}, quiet); err != nil {
		t.Fatal(err)
	}
	cps, err := stream.NewCheckpointLog(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cps.Close()
	cp := ledger.NewCheckpointer(h.st, cps, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if ok, err := cp.Take(context.Background()); err != nil || !ok {
		t.Fatalf("checkpoint: %v %v", ok, err)
	}
	h.r.Client().FlushAll(context.Background())
	took = h.replay(t, "from-checkpoint", cp.Restore)
	t.Logf("rebuild of a wiped Redis from the checkpoint: %v", took)
	if took > 5*time.Second {
		t.Fatalf("rebuild with a checkpoint took %v, more than 5 s", took)
	}
}

// BenchmarkReplay is the replay rate of the log into an empty Redis
// without a checkpoint (1,000,000 taps: 20,000 records of count 50 by
// 10,000 players); taps/s and records/s are reported.
func BenchmarkReplay(b *testing.B) {
	const records = 20_000
	h := newHistory(b, 10_000, records)
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		h.r.Client().FlushAll(context.Background())
		b.StartTimer()
		total += h.replay(b, fmt.Sprintf("replay-%d", i), nil)
	}
	b.ReportMetric(float64(records)*float64(b.N)/total.Seconds(), "records/s")
	b.ReportMetric(float64(h.taps)*float64(b.N)/total.Seconds(), "taps/s")
}
