package stream_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// BenchmarkProducerCPU is BenchmarkProducer (64 concurrent callers, each
// waiting for its acks=all acknowledgement, 20,000 per iteration) without
// Redis, reporting what it costs rather than only how fast it went: the
// process's CPU time (user + system) and heap allocations per acknowledged
// tap. kfake runs in the same process, so its share is included. CPU time
// per tap depends much less than throughput on what else runs on the box.
//
//	go test -run '^$' -bench ProducerCPU -benchtime 3x ./stream
func BenchmarkProducerCPU(b *testing.B) {
	const perIter, callers = 20000, 64
	k := testenv.StartKafka(b, 6, stream.Topic)
	p, err := stream.NewProducer(stream.Config{Brokers: k.Addrs(), Compression: "none"}) // codecs: BenchmarkProducerCompression
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	users := make([]string, 1000)
	for i := range users {
		users[i] = "0123456789abcdef0123456789ab" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
	}
	run := func(n int) int64 {
		var next, failed atomic.Int64
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > int64(n) {
						return
					}
					u := users[int(i)%len(users)]
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					if err := p.Send(ctx, game.TapEvent{ID: "0123456789abcdef0123456789abcdef", UserID: u, Username: "player", Team: game.Red,
						Timestamp: time.Now().UnixMilli(), SessionID: "00112233445566778899aabbccddeeff"}); err != nil {
						failed.Add(1)
					}
					cancel()
				}
			})
		}
		wg.Wait()
		return failed.Load()
	}
	run(2000) // warm up: connections, producer id
	var ms0, ms1 runtime.MemStats
	var ru0, ru1 syscall.Rusage
	runtime.ReadMemStats(&ms0)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	start := time.Now()
	var failed int64
	for range b.N {
		failed += run(perIter)
	}
	el := time.Since(start)
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	runtime.ReadMemStats(&ms1)
	if failed > 0 {
		b.Fatalf("%d sends failed", failed)
	}
	acks := float64(perIter * b.N)
	cpu := time.Duration(syscall.TimevalToNsec(ru1.Utime) - syscall.TimevalToNsec(ru0.Utime) +
		syscall.TimevalToNsec(ru1.Stime) - syscall.TimevalToNsec(ru0.Stime))
	b.ReportMetric(acks/el.Seconds(), "acks/s")
	b.ReportMetric(float64(cpu.Microseconds())/acks, "cpu-µs/ack")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/acks, "allocs/ack")
}
