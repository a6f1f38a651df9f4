package handlers

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
)

// Every caller gets a read that started after it arrived (so it sees a
// round announced before its tap), and concurrent callers share reads.
func TestRoundReadsStartAfterTheCaller(t *testing.T) {
	var announced atomic.Int64 // the "store": the round announced so far
	var reads atomic.Int64
	release := make(chan struct{})
	rr := newRoundReads(func(context.Context) (*game.RoundSchedule, int64, error) {
		reads.Add(1)
		n := announced.Load() // what the store holds when the read starts
		<-release
		return nil, n, nil
	})
	var wg sync.WaitGroup
	first := make(chan int64, 1)
	wg.Go(func() { _, n, _ := rr.get(context.Background()); first <- n })
	for reads.Load() == 0 { // the first read is under way with round 0
		time.Sleep(time.Millisecond)
	}
	announced.Store(1) // a round is announced while that read runs
	results := make(chan int64, 100)
	var calling atomic.Int64
	for range 100 { // taps that came in after the announcement
		wg.Go(func() { calling.Add(1); _, n, _ := rr.get(context.Background()); results <- n })
	}
	// Let them queue behind the running read: all have called get and a
	// next read is queued.
	queued := func() bool {
		rr.mu.Lock()
		defer rr.mu.Unlock()
		return rr.next != nil
	}
	for calling.Load() < 100 || !queued() {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(results)
	if n := <-first; n != 0 {
		t.Fatalf("the first caller got round %d", n)
	}
	for n := range results {
		if n != 1 {
			t.Fatalf("a caller that arrived after the announcement got round %d from a read that started before it", n)
		}
	}
	if n := reads.Load(); n > 3 {
		t.Fatalf("%d reads for 101 callers: concurrent callers do not share reads", n)
	}
}

// A caller whose context ends stops waiting; the reads go on for others.
func TestRoundReadsCallerGivesUp(t *testing.T) {
	release := make(chan struct{})
	rr := newRoundReads(func(context.Context) (*game.RoundSchedule, int64, error) {
		<-release
		return nil, 7, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, _, err := rr.get(ctx); err == nil {
		t.Fatal("a caller whose context ended got no error")
	}
	close(release)
	if _, n, err := rr.get(context.Background()); err != nil || n != 7 {
		t.Fatalf("next caller: %d %v", n, err)
	}
}
