package stream_test

// Benchmarks of the Kafka side against kfake over TCP and a real
// redis-server (AOF everysec, as the embedded redis-server runs); the
// producer and consumer ones also against one Apache Kafka node
// (sub-benchmarks kfake and apache, testenv.KafkaKinds).
//
//	go test -run '^$' -bench . -benchtime 3x ./stream

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/stream"
)

type benchEnv struct {
	r       *testenv.Redis
	k       testenv.Broker
	st      *store.Store
	cfg     stream.Config
	players []game.User
}

func newBenchEnv(b *testing.B, players int) *benchEnv { return newBenchEnvOn(b, "kfake", players) }

// newBenchEnvOn is newBenchEnv on a broker of kind (testenv.KafkaKinds).
func newBenchEnvOn(b *testing.B, kind string, players int) *benchEnv {
	b.Helper()
	e := &benchEnv{r: testenv.StartRedis(b), k: testenv.StartBroker(b, kind, 6, stream.Topic)}
	c := e.r.Client()
	if err := c.ConfigSet(context.Background(), "appendfsync", "everysec").Err(); err != nil {
		b.Fatal(err)
	}
	e.st = store.New(c)
	e.cfg = stream.Config{Brokers: e.k.Addrs(), Group: "bench"}
	for i := range players {
		u, err := e.st.Join(context.Background(), fmt.Sprintf("p%d", i), time.Now())
		if err != nil {
			b.Fatal(err)
		}
		e.players = append(e.players, u)
	}
	return e
}

// fill writes n tap events (one tap each, random players) as fast as
// possible with a plain async producer (not the one under test).
func (e *benchEnv) fill(b *testing.B, n int) {
	b.Helper()
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	cfg.Producer.Partitioner = sarama.NewConsistentCRCHashPartitioner
	cfg.Producer.Flush.Messages = 500
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	ap, err := sarama.NewAsyncProducer(e.k.Addrs(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			select {
			case <-ap.Successes():
			case pe := <-ap.Errors():
				done <- pe.Err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < n; i++ {
		u := e.players[rng.IntN(len(e.players))]
		v, _ := stream.EncodeEvent(game.TapEvent{ID: fmt.Sprintf("%032x", i), UserID: u.ID, Username: u.Username, Team: u.Team, Timestamp: time.Now().UnixMilli(), SessionID: u.SessionID})
		ap.Input() <- &sarama.ProducerMessage{Topic: stream.Topic, Key: sarama.StringEncoder(u.ID), Value: sarama.ByteEncoder(v)}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	_ = ap.Close()
}

// BenchmarkConsumer measures the whole consumer path — fetch from kfake,
// decode, aggregate per player, one Lua script per batch into redis-server,
// notify — in records per second: 200,000 records per iteration are written
// first, then one consumer (6 partitions) applies them all.
func BenchmarkConsumer(b *testing.B) {
	for _, kind := range testenv.KafkaKinds {
		b.Run(kind, func(b *testing.B) { benchConsumer(b, kind) })
	}
}

func benchConsumer(b *testing.B, kind string) {
	const perIter = 200000
	e := newBenchEnvOn(b, kind, 1000)
	e.fill(b, perIter*b.N)
	c, err := stream.NewConsumer(e.cfg, e.st, quiet, stream.ConsumerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rc := e.r.Client()
	ctx, cancel := context.WithCancel(context.Background())
	b.ResetTimer()
	start := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	want := int64(perIter * b.N)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		n, _ := rc.Get(ctx, store.KeyTotalTaps).Int64()
		if n == want {
			break
		}
		if n > want || time.Now().After(deadline) {
			b.Fatalf("applied %d taps, want %d", n, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	cancel()
	_ = c.Close()
	<-done
	b.ReportMetric(float64(want)/el.Seconds(), "records/s")
}

// BenchmarkProducer measures stream.Producer.Send as the tap handler uses
// it: 64 concurrent callers, each waiting for Kafka's acknowledgement
// (acks=all, idempotent). One iteration is 20,000 acknowledged sends.
func BenchmarkProducer(b *testing.B) {
	for _, kind := range testenv.KafkaKinds {
		b.Run(kind, func(b *testing.B) { benchProducer(b, kind) })
	}
}

func benchProducer(b *testing.B, kind string) {
	const perIter, callers = 20000, 64
	e := newBenchEnvOn(b, kind, 1000)
	p, err := stream.NewProducer(e.cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	var failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1)
					if i > perIter {
						return
					}
					u := e.players[int(i)%len(e.players)]
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					if err := p.Send(ctx, game.TapEvent{ID: "x", UserID: u.ID, Username: u.Username, Team: u.Team, Timestamp: time.Now().UnixMilli(), SessionID: u.SessionID}); err != nil {
						failed.Add(1)
					}
					cancel()
				}
			}()
		}
		wg.Wait()
	}
	el := time.Since(start)
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d sends failed", failed.Load())
	}
	b.ReportMetric(float64(perIter*b.N)/el.Seconds(), "acks/s")
}

// BenchmarkDecodeEvent is the consumer's per-record cost of parsing a tap
// event as the app writes it (the largest item of the consumer's CPU
// profile).
func BenchmarkDecodeEvent(b *testing.B) {
	v, _ := stream.EncodeEvent(game.TapEvent{ID: "0123456789abcdef0123456789abcdef", UserID: "fedcba9876543210fedcba9876543210",
		Username: "player 42", Team: game.Blue, Timestamp: time.Now().UnixMilli(), SessionID: "00112233445566778899aabbccddeeff"})
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		if _, err := stream.DecodeEvent(v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeEvent is the producer's per-tap cost of writing a tap
// event's value.
func BenchmarkEncodeEvent(b *testing.B) {
	ev := game.TapEvent{ID: "0123456789abcdef0123456789abcdef", UserID: "fedcba9876543210fedcba9876543210",
		Username: "player 42", Team: game.Blue, Timestamp: time.Now().UnixMilli(), SessionID: "00112233445566778899aabbccddeeff"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := stream.EncodeEvent(ev); err != nil {
			b.Fatal(err)
		}
	}
}
