package stream_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// BenchmarkProducerCompression writes tap events as the tap handler does
// (random event ids, 1,000 players, concurrent callers each waiting for
// its acks=all acknowledgement) with each codec, then stops the broker so it
// writes its data dir, and reports the log's size per tap on disk, the
// process's CPU time per tap (server side and kfake together, as both share
// the process) and throughput. 64 callers is what tapbench's 64 HTTP
// workers send; 1,000 what its 1,000 sockets do (record batches grow with
// the callers waiting, and compress better).
//
//	go test -run '^$' -bench ProducerCompression -benchtime 200000x ./stream
func BenchmarkProducerCompression(b *testing.B) {
	for _, codec := range []string{"none", "lz4", "zstd", "snappy", "gzip"} {
		for _, callers := range []int{64, 1000} {
			b.Run(fmt.Sprintf("%s/callers=%d", codec, callers), func(b *testing.B) { benchCompression(b, codec, callers) })
		}
	}
}

func randomHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

func benchCompression(b *testing.B, codec string, callers int) {
	k := testenv.StartKafka(b, 6, stream.Topic)
	p, err := stream.NewProducer(stream.Config{Brokers: k.Addrs(), Compression: codec})
	if err != nil {
		b.Fatal(err)
	}
	type player struct{ id, name, session string }
	players := make([]player, 1000)
	for i := range players {
		players[i] = player{id: randomHex(16), name: "player-" + randomHex(3), session: randomHex(16)}
	}
	var next, failed atomic.Int64
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				u := players[int(i)%len(players)]
				ev := game.TapEvent{ID: randomHex(16), UserID: u.id, Username: u.name, Team: game.Red,
					Timestamp: time.Now().UnixMilli(), SessionID: u.session}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := p.Send(ctx, ev); err != nil {
					failed.Add(1)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	if err := p.Close(); err != nil {
		b.Fatal(err)
	}
	if failed.Load() > 0 {
		b.Fatalf("%d sends failed", failed.Load())
	}
	k.Stop() // writes what kfake holds to its data dir
	var size int64
	_ = filepath.WalkDir(k.Dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	cpu := time.Duration(syscall.TimevalToNsec(ru1.Utime) - syscall.TimevalToNsec(ru0.Utime) +
		syscall.TimevalToNsec(ru1.Stime) - syscall.TimevalToNsec(ru0.Stime))
	n := float64(b.N)
	b.ReportMetric(float64(size)/n, "disk-B/tap")
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/tap")
	b.ReportMetric(n/el.Seconds(), "taps/s")
}
