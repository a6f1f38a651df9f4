package stream_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// Tests of the producer alone against kfake over TCP: what it acknowledges
// is in the topic exactly once, on the partition sarama's CRC partitioner
// (librdkafka's) gives, through broker restarts, leader moves and errors.

// topicRecord is one record of game-taps as read back.
type topicRecord struct {
	partition int32
	offset    int64
	key       string
	ev        game.TapEvent
}

// readRecords reads every record of game-taps; each must be a valid event.
func readRecords(t *testing.T, brokers []string) []topicRecord {
	t.Helper()
	var out []topicRecord
	for _, r := range testenv.TopicRecords(t, brokers) {
		ev, err := stream.DecodeEvent(r.Value)
		if err != nil {
			t.Fatalf("partition %d offset %d: %v", r.Partition, r.Offset, err)
		}
		out = append(out, topicRecord{partition: r.Partition, offset: r.Offset, key: r.Key, ev: ev})
	}
	return out
}

// load sends taps from several goroutines, each with its own deadline, and
// records which were acknowledged.
type load struct {
	p       *stream.Producer
	timeout time.Duration

	mu      sync.Mutex
	acked   map[string]bool // ids of the acknowledged taps
	failed  int
	slowest time.Duration // longest Send that failed

	next atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

var crc = sarama.NewConsistentCRCHashPartitioner(stream.Topic)
var crcMu sync.Mutex

// crcPartition is the partition that sarama's CRC partitioner (and kcat's
// default) gives a key.
func crcPartition(t *testing.T, key string, n int32) int32 {
	crcMu.Lock()
	defer crcMu.Unlock()
	p, err := crc.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func tap(i int64) game.TapEvent {
	u := fmt.Sprintf("player-%03d", i%997)
	return game.TapEvent{ID: fmt.Sprintf("tap-%d", i), UserID: u, Username: u, Team: game.Blue, Timestamp: time.Now().UnixMilli(), Count: 1 + int(i%3)}
}

// startLoad runs workers goroutines sending taps from+1, from+2, … until
// n taps were sent (n > 0) or stopLoad is called.
func startLoad(p *stream.Producer, workers int, from, n int64, timeout time.Duration) *load {
	l := &load{p: p, timeout: timeout, acked: map[string]bool{}, stop: make(chan struct{})}
	l.next.Store(from)
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				i := l.next.Add(1)
				if n > 0 && i > from+n {
					return
				}
				ev := tap(i)
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				start := time.Now()
				err := p.Send(ctx, ev)
				d := time.Since(start)
				cancel()
				l.mu.Lock()
				if err == nil {
					l.acked[ev.ID] = true
				} else {
					l.failed++
					l.slowest = max(l.slowest, d)
				}
				l.mu.Unlock()
				if err != nil {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	return l
}

func (l *load) wait() { l.wg.Wait() }

func (l *load) stopLoad() {
	close(l.stop)
	l.wg.Wait()
}

func (l *load) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// checkTopic fails unless every acknowledged tap is in the topic, no tap is
// there twice, and each record is keyed by its player and on the partition
// the CRC partitioner gives. It returns the number of records.
func checkTopic(t *testing.T, brokers []string, l *load, partitions int32) int {
	t.Helper()
	recs := readRecords(t, brokers)
	seen := map[string]topicRecord{}
	for _, r := range recs {
		if was, ok := seen[r.ev.ID]; ok {
			t.Fatalf("tap %s written twice: partition %d offsets %d and %d", r.ev.ID, r.partition, was.offset, r.offset)
		}
		seen[r.ev.ID] = r
		if r.key != r.ev.UserID {
			t.Fatalf("tap %s keyed %q, player %q", r.ev.ID, r.key, r.ev.UserID)
		}
		if want := crcPartition(t, r.key, partitions); r.partition != want {
			t.Fatalf("tap %s of %s on partition %d, the CRC partitioner gives %d", r.ev.ID, r.key, r.partition, want)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for id := range l.acked {
		if _, ok := seen[id]; !ok {
			t.Fatalf("acknowledged tap %s is not in the topic", id)
		}
	}
	return len(recs)
}

// noProducerGoroutines fails if a goroutine of the producer outlived Close.
func noProducerGoroutines(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, func() string {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		for _, g := range strings.Split(stacks, "\n\n") {
			for _, f := range []string{"tapwars/stream.(*Producer)", "sarama.(*asyncProducer)", "sarama.(*topicProducer)",
				"sarama.(*partitionProducer)", "sarama.(*brokerProducer)"} {
				if strings.Contains(g, f) {
					return "goroutine left after Close:\n" + g
				}
			}
		}
		return ""
	})
}

func newProducer(t *testing.T, brokers []string) *stream.Producer {
	t.Helper()
	p, err := stream.NewProducer(stream.Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// 20,000 concurrent Sends from 64 goroutines to 6 partitions: every one is
// acknowledged and in the topic once, on its CRC partition.
func TestProducerConcurrentSends(t *testing.T) {
	k := testenv.StartKafka(t, 6, stream.Topic)
	p := newProducer(t, k.Addrs())
	start := time.Now()
	l := startLoad(p, 64, 0, 20000, 10*time.Second)
	l.wait()
	t.Logf("20000 sends in %v", time.Since(start).Round(time.Millisecond))
	if l.failed > 0 {
		t.Fatalf("%d of 20000 sends failed", l.failed)
	}
	if n := checkTopic(t, k.Addrs(), l, 6); n != 20000 {
		t.Fatalf("%d records in the topic, want 20000", n)
	}
	start = time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("closed in %v", time.Since(start).Round(time.Millisecond))
	noProducerGoroutines(t)
}

// The broker stops (persisting to its data dir) and starts again on the same
// port while taps are sent: sends fail within their deadline meanwhile,
// succeed again soon after the restart, and every acknowledged tap is in the
// topic, none twice.
func TestProducerBrokerRestart(t *testing.T) {
	k := testenv.StartKafka(t, 6, stream.Topic)
	p := newProducer(t, k.Addrs())
	const timeout = 2 * time.Second
	l := startLoad(p, 32, 0, 0, timeout)
	time.Sleep(500 * time.Millisecond)
	before := l.ackedCount()
	if before == 0 {
		t.Fatal("nothing acknowledged before the restart")
	}

	k.Stop()
	time.Sleep(timeout + time.Second) // longer than a send waits
	k.Restart()
	back := time.Now()
	// A tap of our own after the restart: acknowledged within a few
	// seconds (the load's taps of the outage time out meanwhile).
	probe := int64(1 << 40)
	testenv.Eventually(t, 10*time.Second, func() string {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		probe++
		ev := tap(probe)
		if err := p.Send(ctx, ev); err != nil {
			return err.Error()
		}
		l.mu.Lock()
		l.acked[ev.ID] = true
		l.mu.Unlock()
		return ""
	})
	// sarama's partition producers stop looking for a leader for 10 s after
	// three failures; the producer replaces them as soon as Kafka answers.
	if d := time.Since(back); d > 2*time.Second {
		t.Fatalf("sends acknowledged again only %v after the broker came back", d)
	}
	t.Logf("sends acknowledged again %v after the broker came back", time.Since(back).Round(time.Millisecond))
	afterBack := l.ackedCount()
	time.Sleep(700 * time.Millisecond)
	l.stopLoad()
	if l.ackedCount() <= afterBack {
		t.Fatalf("no tap of the load acknowledged after the restart")
	}
	if l.failed == 0 {
		t.Fatal("no send failed while the broker was down")
	}
	if l.slowest > timeout+500*time.Millisecond {
		t.Fatalf("a failed send took %v, its deadline was %v", l.slowest, timeout)
	}
	n := checkTopic(t, k.Addrs(), l, 6)
	t.Logf("%d acknowledged (%d before the stop), %d failed, %d in the topic", l.ackedCount(), before, l.failed, n)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	noProducerGoroutines(t)
}

// Produce answers REQUEST_TIMED_OUT after writing (as a broker whose
// replicas were slow), NOT_LEADER, and once OUT_OF_ORDER_SEQUENCE_NUMBER:
// every acknowledged tap is in the topic exactly once (a resent batch is
// recognised by its producer id and sequence numbers), sends on retriable
// errors succeed, and sends after the out-of-order answer go through again.
func TestProducerExactlyOnceUnderFaults(t *testing.T) {
	k := testenv.StartKafka(t, 3, stream.Topic)
	p := newProducer(t, k.Addrs())
	// Warm up, so the faults hit produce requests. Each fault answers one
	// request, and a batch is resent with a growing pause: a handful keeps
	// the retried taps within their deadline.
	l := startLoad(p, 8, 0, 200, 5*time.Second)
	l.wait()

	timedOut := k.Cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: stream.Topic, Err: kerr.RequestTimedOut, Count: 4})
	notLeader := k.Cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: stream.Topic, Partitions: []int32{1}, Err: kerr.NotLeaderForPartition, Count: 3})
	l2 := startLoad(p, 16, 1000, 3000, 5*time.Second)
	l2.wait()
	if timedOut.Hits() == 0 || notLeader.Hits() == 0 {
		t.Fatalf("faults hit %d and %d times", timedOut.Hits(), notLeader.Hits())
	}
	if l2.failed > 0 {
		t.Fatalf("%d sends failed on retriable errors", l2.failed)
	}
	for id := range l2.acked {
		l.acked[id] = true
	}

	// Out of order: whatever sarama does with that batch, later taps pass
	// and nothing is written twice.
	ooo := k.Cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: stream.Topic, Err: kerr.OutOfOrderSequenceNumber, Count: 1})
	l3 := startLoad(p, 16, 200000, 1000, 5*time.Second)
	l3.wait()
	if ooo.Hits() != 1 {
		t.Fatalf("out-of-order fault hit %d times", ooo.Hits())
	}
	l4 := startLoad(p, 16, 300000, 1000, 5*time.Second)
	l4.wait()
	if l4.failed > 0 {
		t.Fatalf("%d sends failed after the out-of-order answer", l4.failed)
	}
	for _, x := range []*load{l3, l4} {
		for id := range x.acked {
			l.acked[id] = true
		}
	}
	n := checkTopic(t, k.Addrs(), l, 3)
	t.Logf("%d records in the topic, %d acknowledged, %d failed at the out-of-order answer", n, len(l.acked), l3.failed)
}

// Partition leaders move between three brokers while taps are sent: each
// broker gets a sender of its own, moved partitions follow, nothing is lost
// or written twice.
func TestProducerLeaderMoves(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(6, stream.Topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	p := newProducer(t, brokers)
	l := startLoad(p, 32, 0, 0, 5*time.Second)
	for i := range 6 {
		time.Sleep(150 * time.Millisecond)
		to := (c.LeaderFor(stream.Topic, int32(i)) + 1) % 3
		if err := c.MoveTopicPartition(stream.Topic, int32(i), to); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	moved := l.ackedCount()
	time.Sleep(500 * time.Millisecond)
	l.stopLoad()
	if l.failed > 0 {
		t.Fatalf("%d sends failed while leaders moved", l.failed)
	}
	if l.ackedCount() <= moved {
		t.Fatal("nothing acknowledged after the moves")
	}
	n := checkTopic(t, brokers, l, 6)
	if n != l.ackedCount() {
		t.Fatalf("%d records in the topic, %d acknowledged", n, l.ackedCount())
	}
	t.Logf("%d taps acknowledged across leader moves", n)
}

// Close sends what is waiting and waits for the answers; Sends after Close
// fail with ErrClosed; a Send with a cancelled context returns at once.
func TestProducerClose(t *testing.T) {
	k := testenv.StartKafka(t, 3, stream.Topic)
	p, err := stream.NewProducer(stream.Config{Brokers: k.Addrs()})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	err = p.Send(ctx, tap(1))
	if !errors.Is(err, game.ErrUnavailable) || !errors.Is(err, context.Canceled) || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("send with a cancelled context: %v after %v", err, time.Since(start))
	}

	// Many Sends waiting when Close is called: each ends acknowledged (and
	// in the topic) or failed, by the time Close returns.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results = map[string]error{}
		started = make(chan struct{})
		once    sync.Once
	)
	for i := range 500 {
		wg.Go(func() {
			once.Do(func() { close(started) })
			ev := tap(int64(10 + i))
			err := p.Send(context.Background(), ev)
			mu.Lock()
			results[ev.ID] = err
			mu.Unlock()
		})
	}
	<-started
	time.Sleep(5 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{})
	go func() { wg.Wait(); close(returned) }()
	select {
	case <-returned:
	case <-time.After(time.Second):
		t.Fatal("Sends still waiting after Close returned")
	}
	l := &load{acked: map[string]bool{}}
	for id, err := range results {
		switch {
		case err == nil:
			l.acked[id] = true
		case errors.Is(err, stream.ErrClosed) && errors.Is(err, game.ErrUnavailable):
		default:
			t.Fatalf("send during Close: %v", err)
		}
	}
	t.Logf("%d of 500 sends waiting at Close acknowledged", len(l.acked))
	if len(l.acked) == 0 {
		t.Fatal("Close sent none of the waiting taps")
	}
	checkTopic(t, k.Addrs(), l, 3)

	err = p.Send(context.Background(), tap(2))
	if !errors.Is(err, stream.ErrClosed) || !errors.Is(err, game.ErrUnavailable) {
		t.Fatalf("send after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	noProducerGoroutines(t)
}

// With the broker gone, Sends without a deadline fail (no partition leader
// answers) instead of waiting forever, and Close returns in bounded time.
func TestProducerCloseBrokerGone(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: waits for Close's bound")
	}
	k := testenv.StartKafka(t, 3, stream.Topic)
	p, err := stream.NewProducer(stream.Config{Brokers: k.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	k.Stop()
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range 20 {
		wg.Go(func() {
			if err := p.Send(context.Background(), tap(int64(i))); err != nil {
				failed.Add(1)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	_ = p.Close() // may report a request still on the wire
	took := time.Since(start)
	wg.Wait()
	t.Logf("Close took %v with the broker gone", took.Round(time.Millisecond))
	if took > 8*time.Second {
		t.Fatalf("Close took %v", took)
	}
	if failed.Load() != 20 {
		t.Fatalf("%d of 20 sends failed with the broker gone", failed.Load())
	}
	noProducerGoroutines(t)
}
