package stream_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type env struct {
	r       *testenv.Redis
	k       *testenv.Kafka
	st      *store.Store
	cfg     stream.Config
	players []game.User

	mu    sync.Mutex
	acked map[string]int64
}

func newEnv(t *testing.T, players int) *env {
	t.Helper()
	e := &env{r: testenv.StartRedis(t), k: testenv.StartKafka(t, 4, stream.Topic), acked: map[string]int64{}}
	e.st = store.New(e.r.Client())
	e.cfg = stream.Config{Brokers: e.k.Addrs(), Group: "test-" + t.Name()}
	for i := range players {
		u, err := e.st.Join(context.Background(), fmt.Sprintf("p%d", i), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		e.players = append(e.players, u)
	}
	return e
}

// produce sends n tap events (random players, random counts) from several
// goroutines and records what Kafka acknowledged.
func (e *env) produce(t *testing.T, p *stream.Producer, n int) {
	t.Helper()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				u := e.players[rand.IntN(len(e.players))]
				c := 1 + rand.IntN(3)
				ev := game.TapEvent{ID: fmt.Sprint(rand.Int64()), UserID: u.ID, Username: u.Username, Team: u.Team, Timestamp: time.Now().UnixMilli(), Count: c}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := p.Send(ctx, ev)
				cancel()
				if err != nil {
					continue // not acknowledged: may or may not count; tests here expect none
				}
				e.mu.Lock()
				e.acked[u.ID] += int64(c)
				e.mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func (e *env) producer(t *testing.T) *stream.Producer {
	t.Helper()
	p, err := stream.NewProducer(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// consumer runs a consumer until the returned stop is called.
func (e *env) consumer(t *testing.T, app stream.Applier, opt stream.ConsumerOptions) (stop func()) {
	t.Helper()
	c, err := stream.NewConsumer(e.cfg, app, quiet, opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			_ = c.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// check waits until Redis holds exactly the acknowledged taps, per player
// and per team, and fails if it holds more or never gets there.
func (e *env) check(t *testing.T) {
	t.Helper()
	e.mu.Lock()
	want := map[game.Team]int64{}
	var total int64
	for _, u := range e.players {
		want[u.Team] += e.acked[u.ID]
		total += e.acked[u.ID]
	}
	e.mu.Unlock()
	ctx := context.Background()
	testenv.Eventually(t, 30*time.Second, func() string {
		snap, err := e.st.Snapshot(ctx, 1, time.Now())
		if err != nil {
			return err.Error()
		}
		gs := snap.GameState
		if gs.TotalTaps > total {
			t.Fatalf("counted %d taps, only %d acknowledged: counted twice", gs.TotalTaps, total)
		}
		if gs.TotalTaps != total || gs.BlueScore != want[game.Blue] || gs.RedScore != want[game.Red] {
			return fmt.Sprintf("state %+v, want total %d blue %d red %d", gs, total, want[game.Blue], want[game.Red])
		}
		return ""
	})
	for _, u := range e.players {
		got, err := e.st.User(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.TapCount != e.acked[u.ID] {
			t.Fatalf("player %s: %d taps counted, %d acknowledged", u.Username, got.TapCount, e.acked[u.ID])
		}
	}
}

func TestConsumerCountsEveryAcknowledgedTapOnce(t *testing.T) {
	e := newEnv(t, 50)
	p := e.producer(t)
	e.consumer(t, e.st, stream.ConsumerOptions{})
	e.produce(t, p, 3000)
	e.check(t)
}

// A consumer stopped in the middle of a batch (while applying it) and a new
// one started afterwards count every tap exactly once.
func TestConsumerStoppedMidBatch(t *testing.T) {
	e := newEnv(t, 30)
	p := e.producer(t)
	e.produce(t, p, 2000)

	var calls atomic.Int32
	fifth := make(chan struct{})
	stop := e.consumer(t, e.st, stream.ConsumerOptions{MaxBatch: 100, BeforeApply: func(game.Batch) {
		if calls.Add(1) == 5 {
			close(fifth)
			time.Sleep(50 * time.Millisecond) // the session ends while this batch is applied
		}
	}})
	select {
	case <-fifth:
		stop()
	case <-time.After(30 * time.Second):
		t.Fatal("consumer never reached its fifth batch")
	}
	e.produce(t, p, 1000)
	e.consumer(t, e.st, stream.ConsumerOptions{MaxBatch: 100})
	e.check(t)
}

// forgetful hides the stored offsets, so the group starts from the oldest
// record and every record is delivered a second time.
type forgetful struct{ *store.Store }

func (forgetful) Offsets(context.Context, string, []int32) (map[int32]int64, error) {
	return map[int32]int64{}, nil
}

func TestConsumerIgnoresRecordsDeliveredTwice(t *testing.T) {
	e := newEnv(t, 20)
	p := e.producer(t)
	e.produce(t, p, 1500)
	stop := e.consumer(t, e.st, stream.ConsumerOptions{MaxBatch: 64})
	e.check(t)
	stop()
	// Everything again from offset 0, in different batch sizes.
	e.cfg.Group += "-again"
	e.consumer(t, forgetful{e.st}, stream.ConsumerOptions{MaxBatch: 37})
	e.produce(t, p, 500)
	e.check(t)
	time.Sleep(500 * time.Millisecond) // nothing more may arrive
	e.check(t)
}

func TestTwoConsumersRebalanceUnderLoad(t *testing.T) {
	e := newEnv(t, 100)
	p := e.producer(t)
	stopA := e.consumer(t, e.st, stream.ConsumerOptions{MaxBatch: 200})
	done := make(chan struct{})
	go func() { defer close(done); e.produce(t, p, 6000) }()
	time.Sleep(300 * time.Millisecond)
	e.consumer(t, e.st, stream.ConsumerOptions{MaxBatch: 200}) // B joins: rebalance
	time.Sleep(700 * time.Millisecond)
	stopA() // A leaves: rebalance again
	<-done
	e.check(t)
}

// Records that are not valid tap events are skipped without stalling the
// partition; valid records after them are counted.
func TestPoisonIsSkipped(t *testing.T) {
	e := newEnv(t, 2)
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	sp, err := sarama.NewSyncProducer(e.k.Addrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	u := e.players[0]
	good := fmt.Sprintf(`{"id":"x","userId":%q,"username":"p0","team":"red","timestamp":1,"sessionId":"s"}`, u.ID)
	poison := []string{`not json`, `{"userId":""}`, `{"userId":"nobody-knows-me"}`, fmt.Sprintf(`{"userId":%q,"count":-5}`, u.ID),
		fmt.Sprintf(`{"userId":%q,"count":1e9}`, u.ID), `{"userId":` + fmt.Sprintf("%q", string(make([]byte, 5000))) + `}`, `[]`, `null`}
	for _, v := range poison {
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: stream.Topic, Key: sarama.StringEncoder(u.ID), Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: stream.Topic, Key: sarama.StringEncoder(u.ID), Value: sarama.StringEncoder(good)}); err != nil {
			t.Fatal(err)
		}
	}
	e.acked[u.ID] = 3
	e.consumer(t, e.st, stream.ConsumerOptions{})
	e.check(t)
}
