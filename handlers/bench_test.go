package handlers_test

// Tap handler throughput over real HTTP (keep-alive) against a whole
// in-process tapwars instance (app.Main) with kfake over TCP and a real
// redis-server, beside a do-nothing Go handler driven by the same client in
// the same run.
//
//	go test -run '^$' -bench Tap -benchtime 3x ./handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapwars/tapwars/app"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

const (
	benchPlayers = 1000
	benchWorkers = 64
	benchPerIter = 20000
)

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchWorkers, MaxConnsPerHost: 0, DisableCompression: true}}
}

// hammer sends n POST /api/tap with benchWorkers concurrent keep-alive
// connections, rotating over tokens, and returns how long it took and the
// answers that were not 202.
func hammer(b *testing.B, c *http.Client, url string, tokens []string, n int) (time.Duration, int64) {
	var next, bad atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range benchWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, url, nil)
				req.Header.Set("Authorization", "Bearer "+tokens[int(i)%len(tokens)])
				res, err := c.Do(req)
				if err != nil {
					bad.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
				if res.StatusCode != http.StatusAccepted {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), bad.Load()
}

// noopServer answers POST /api/tap with 202 and does nothing else.
func noopServer(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"success":true}`))
	})}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/api/tap"
}

// BenchmarkTap (sub-benchmarks per broker: kfake, then one Apache Kafka
// node): one iteration is 20,000 taps of 1,000 players from 64
// keep-alive connections against tapwars (every 202 waited for Kafka's
// acks=all acknowledgement), then the same against the do-nothing handler.
// It reports both rates and their ratio, and checks that Redis counted
// exactly the acknowledged taps.
func BenchmarkTap(b *testing.B) {
	for _, kind := range testenv.KafkaKinds {
		b.Run(kind, func(b *testing.B) { benchTap(b, kind) })
	}
}

func benchTap(b *testing.B, kind string) {
	r, k := testenv.StartRedis(b), testenv.StartBroker(b, kind, 6, stream.Topic)
	rc := r.Client()
	if err := rc.ConfigSet(context.Background(), "appendfsync", "everysec").Err(); err != nil {
		b.Fatal(err)
	}
	m := app.NewMain()
	vars := map[string]string{"ADDR": "127.0.0.1:0", "DATA_DIR": b.TempDir(), "REDIS_URL": r.URL(),
		"KAFKA_BROKERS": strings.Join(k.Addrs(), ","), "SESSION_SECRET": "bench-secret-0123456789", "LOG_LEVEL": "error",
		// Limits off: one client address plays 1,000 players here.
		"TAP_RATE_LIMIT": "0", "JOIN_RATE_LIMIT": "0", "JOINS_PER_SECOND": "0", "MAX_CONNECTIONS": "0", "MAX_CONNECTIONS_PER_IP": "0"}
	if err := m.Config.Parse(nil, func(k string) string { return vars[k] }, io.Discard); err != nil {
		b.Fatal(err)
	}
	m.LogOutput = io.Discard
	if err := m.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })

	c := benchClient()
	tokens := make([]string, benchPlayers)
	for i := range tokens {
		res, err := c.Post(m.URL()+"/api/join", "application/json", bytes.NewBufferString(fmt.Sprintf(`{"username":"b%d"}`, i)))
		if err != nil {
			b.Fatal(err)
		}
		var j struct{ Token string }
		_ = json.NewDecoder(res.Body).Decode(&j)
		_ = res.Body.Close()
		if j.Token == "" {
			b.Fatalf("join %d: %s", i, res.Status)
		}
		tokens[i] = j.Token
	}
	noop := noopServer(b)
	// Warm both up (connections, sarama metadata, JIT of nothing).
	hammer(b, c, m.URL()+"/api/tap", tokens, 2000)
	hammer(b, c, noop, tokens, 2000)

	var tapDur, noopDur time.Duration
	b.ResetTimer()
	for range b.N {
		d, bad := hammer(b, c, m.URL()+"/api/tap", tokens, benchPerIter)
		if bad > 0 {
			b.Fatalf("%d taps not answered 202", bad)
		}
		tapDur += d
		d, _ = hammer(b, c, noop, tokens, benchPerIter)
		noopDur += d
	}
	b.StopTimer()
	want := int64(2000 + benchPerIter*b.N)
	testenv.Eventually(b, 30*time.Second, func() string {
		n, _ := rc.Get(context.Background(), "game:total:taps").Int64()
		if n != want {
			return fmt.Sprintf("counted %d, acknowledged %d", n, want)
		}
		return ""
	})
	tapRate := float64(benchPerIter*b.N) / tapDur.Seconds()
	noopRate := float64(benchPerIter*b.N) / noopDur.Seconds()
	b.ReportMetric(tapRate, "taps/s")
	b.ReportMetric(noopRate, "noop-req/s")
	b.ReportMetric(tapRate/noopRate, "ratio")
}
