package live_test

// Cost of one broadcast — read the state once, render every format once,
// wake every client, and each client's goroutine writing the frame — to N
// clients. The source is in memory (the Redis read is measured by the store
// benchmarks), so this is the hub's own cost.
//
//	go test -run '^$' -bench Broadcast -benchtime 3x ./live

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/live"
)

// benchSource is an in-memory game of 1,000 players; each Snapshot shows
// one more tap.
type benchSource struct {
	total atomic.Int64
	snap  game.Snapshot
}

func newBenchSource() *benchSource {
	s := &benchSource{}
	for i := range 100 {
		team := game.Blue
		if i%2 == 1 {
			team = game.Red
		}
		id := fmt.Sprintf("%032x", i)
		s.snap.Users = append(s.snap.Users, game.Player{ID: id, Username: fmt.Sprintf("player %d", i), Team: team, TapCount: int64(1000 - i)})
		s.snap.Leaderboard = append(s.snap.Leaderboard, game.LeaderboardEntry{ID: id, Username: fmt.Sprintf("player %d", i), Team: team, TapCount: int64(1000 - i), Rank: i + 1})
	}
	return s
}

func (s *benchSource) Snapshot(ctx context.Context, top int, now time.Time) (game.Snapshot, error) {
	snap := s.snap
	n := s.total.Add(1)
	snap.GameState = game.State{BlueScore: n / 2, RedScore: n - n/2, TotalTaps: n, ActiveUsers: 1000, BlueOnline: 500, RedOnline: 500, LastUpdated: now.UnixMilli()}
	if len(snap.Leaderboard) > top {
		snap.Leaderboard = snap.Leaderboard[:top]
	}
	return snap, nil
}

func (s *benchSource) Stats(ctx context.Context, ids []string) (map[string]game.PlayerStats, error) {
	return map[string]game.PlayerStats{}, nil
}
func (s *benchSource) Subscribe(ctx context.Context) <-chan struct{} { return make(chan struct{}) }
func (s *benchSource) Touch(ctx context.Context, now time.Time, users ...game.User) error {
	return nil
}

// countConn counts the frames written through it into a shared counter;
// with w set it also writes them to a socket.
type countConn struct {
	n *atomic.Int64
	w net.Conn
}

func (c *countConn) Write(deadline time.Time, msgs ...[]byte) error {
	if c.w != nil {
		_ = c.w.SetWriteDeadline(deadline)
		bufs := net.Buffers(msgs)
		if _, err := bufs.WriteTo(c.w); err != nil {
			return err
		}
	}
	c.n.Add(int64(len(msgs)))
	return nil
}
func (c *countConn) Heartbeat(ctx context.Context) error { return nil }
func (c *countConn) Bye(ctx context.Context) error       { return nil }

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(b *testing.B, ln net.Listener) (net.Conn, net.Conn) {
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			b.Error(err)
		}
		acc <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	return <-acc, c
}

// BenchmarkBroadcast: one op is one state change delivered to every client
// (a third each of SSE JSON, SSE HTML fragments and WebSocket JSON
// formats). "mem" clients write nowhere; "tcp" clients write to a loopback
// socket drained by a reader goroutine.
func BenchmarkBroadcast(b *testing.B) {
	for _, tc := range []struct {
		clients int
		tcp     bool
	}{{0, false}, {100, false}, {1000, false}, {10000, false}, {100, true}, {1000, true}} {
		kind := "mem"
		if tc.tcp {
			kind = "tcp"
		}
		b.Run(fmt.Sprintf("clients=%d/%s", tc.clients, kind), func(b *testing.B) {
			benchBroadcast(b, tc.clients, tc.tcp)
		})
	}
}

func benchBroadcast(b *testing.B, clients int, tcp bool) {
	src := newBenchSource()
	hub := live.NewHub(src, slog.New(slog.NewTextHandler(io.Discard, nil)), live.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	var delivered atomic.Int64
	var wg sync.WaitGroup
	var ln net.Listener
	if tcp {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
	}
	formats := []live.Format{live.SSEJSON, live.SSEGame, live.WSJSON}
	for i := range clients {
		conn := &countConn{n: &delivered}
		if tcp {
			srv, cli := tcpPair(b, ln)
			conn.w = srv
			go func() { _, _ = io.Copy(io.Discard, cli) }()
			defer srv.Close()
			defer cli.Close()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = hub.Serve(ctx, conn, formats[i%len(formats)], nil, live.ServeOptions{})
		}()
	}
	// Every client has its first frame.
	for delivered.Load() < int64(clients) {
		time.Sleep(time.Millisecond)
	}
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	for i := range b.N {
		if err := hub.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
		want := int64(clients) * int64(i+2)
		for delivered.Load() < want {
			runtime.Gosched()
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	if clients > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(clients), "ns/client")
		b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N)/float64(clients), "B/client")
	}
	cancel()
	wg.Wait()
}

// playersSource is a game of n players online, each tapping about five
// times a second: every Snapshot (one frame, 50 ms apart at the hub's
// default pace) n/4 taps by random players. Its users list is the most
// recently seen, capped like the store's (store.MaxOnlineListed).
type playersSource struct {
	benchSource
	mu      sync.Mutex
	rnd     *rand.Rand
	players []game.Player // by id order
	recent  []int         // indexes into players, most recently seen first
}

func newPlayersSource(n int) *playersSource {
	s := &playersSource{rnd: rand.New(rand.NewPCG(1, uint64(n)))}
	for i := range n {
		team := game.Blue
		if i%2 == 1 {
			team = game.Red
		}
		s.players = append(s.players, game.Player{ID: fmt.Sprintf("%032x", i), Username: fmt.Sprintf("player %d", i), Team: team})
		s.recent = append(s.recent, i)
	}
	return s
}

func (s *playersSource) Snapshot(ctx context.Context, top int, now time.Time) (game.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var snap game.Snapshot
	for range max(1, len(s.players)/4) {
		i := s.rnd.IntN(len(s.players))
		s.players[i].TapCount++
		snap.GameState.TotalTaps++
		s.recent = append([]int{i}, slices.DeleteFunc(s.recent, func(j int) bool { return j == i })...)
	}
	n := s.total.Add(snap.GameState.TotalTaps)
	for _, i := range s.recent[:min(len(s.recent), 100)] {
		snap.Users = append(snap.Users, s.players[i])
	}
	byTaps := slices.Clone(s.players)
	slices.SortStableFunc(byTaps, func(a, b game.Player) int { return int(b.TapCount - a.TapCount) })
	for r, p := range byTaps[:min(len(byTaps), top)] {
		snap.Leaderboard = append(snap.Leaderboard, game.LeaderboardEntry{ID: p.ID, Username: p.Username, Team: p.Team, TapCount: p.TapCount, Rank: r + 1})
	}
	online := int64(len(s.players))
	snap.GameState = game.State{BlueScore: n / 2, RedScore: n - n/2, TotalTaps: n, ActiveUsers: online, BlueOnline: online / 2, RedOnline: online - online/2, LastUpdated: now.UnixMilli()}
	return snap, nil
}

// byteConn counts the bytes written through it.
type byteConn struct {
	frames, bytes atomic.Int64
}

func (c *byteConn) Write(deadline time.Time, msgs ...[]byte) error {
	for _, m := range msgs {
		c.bytes.Add(int64(len(m)))
	}
	c.frames.Add(1)
	return nil
}
func (c *byteConn) Heartbeat(ctx context.Context) error { return nil }
func (c *byteConn) Bye(ctx context.Context) error       { return nil }

// BenchmarkLiveBytes: the bytes a live client is sent per second while n
// players tap, at the hub's default pace of 20 frames a second (one op is
// one frame, 50 ms apart, so the leaderboard's hold of Options.BoardInterval
// works as in the app; B/client/s = B/frame × 20). The first, whole frame
// is left out.
//
//	go test -run '^$' -bench LiveBytes -benchtime 100x ./live
func BenchmarkLiveBytes(b *testing.B) {
	for _, players := range []int{100, 1000} {
		for _, f := range []struct {
			name   string
			format live.Format
		}{{"ws-json", live.WSJSON}, {"sse-json", live.SSEJSON}, {"ws-game", live.WSGame}} {
			b.Run(fmt.Sprintf("players=%d/%s", players, f.name), func(b *testing.B) {
				src := newPlayersSource(players)
				hub := live.NewHub(src, slog.New(slog.NewTextHandler(io.Discard, nil)), live.Options{})
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				conn := &byteConn{}
				done := make(chan struct{})
				go func() { defer close(done); _ = hub.Serve(ctx, conn, f.format, nil, live.ServeOptions{}) }()
				for conn.frames.Load() < 1 {
					time.Sleep(time.Millisecond)
				}
				bytes0 := conn.bytes.Load()
				b.ResetTimer()
				start := time.Now()
				for i := range b.N {
					time.Sleep(time.Until(start.Add(time.Duration(i) * 50 * time.Millisecond)))
					if err := hub.Refresh(ctx); err != nil {
						b.Fatal(err)
					}
					for conn.frames.Load() < int64(i+2) {
						runtime.Gosched()
					}
				}
				b.StopTimer()
				perFrame := float64(conn.bytes.Load()-bytes0) / float64(b.N)
				b.ReportMetric(perFrame, "B/frame")
				b.ReportMetric(perFrame*20, "B/client/s")
				cancel()
				<-done
			})
		}
	}
}
