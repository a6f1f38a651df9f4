package app_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tapwars/tapwars/app"
	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// holdProduceTo makes the broker hold every produce request that writes
// to topic until release is closed (other connections go on).
func holdProduceTo(k *testenv.Kafka, topic string, release <-chan struct{}) {
	k.Cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.Cluster.KeepControl()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			if tp.Topic == topic {
				k.Cluster.SleepControl(func() { <-release })
				break
			}
		}
		return nil, nil, false
	})
}

// A checkpoint on its way (held by the broker) does not hold taps back:
// it has a producer of its own. Before, it went through the tap producer,
// which sends one request at a time per broker, and the tap waited behind
// it past TAP_TIMEOUT. The newest checkpoint's age shows on /metrics and
// /readyz once one is written.
func TestCheckpointTrafficDoesNotDelayTaps(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := instance(t, r, k, map[string]string{"CHECKPOINT_INTERVAL": "1h", "TAP_TIMEOUT": "3s"})
	base := m.URL()
	a := join(t, base, "ada")
	tapN(t, base, a, 1)
	waitTotals(t, base, map[*joined]int64{&a: 1})
	if _, body := readyz(t, base); body["checkpoint_age"] != "none yet" {
		t.Fatalf("readyz before any checkpoint: %v", body)
	}

	release := make(chan struct{})
	var once sync.Once
	done := func() { once.Do(func() { close(release) }) }
	defer done()
	holdProduceTo(k, stream.CheckpointTopic, release)
	took := make(chan error, 1)
	go func() { _, err := m.Checkpointer.Take(context.Background()); took <- err }()
	time.Sleep(300 * time.Millisecond) // the checkpoint's request reaches the broker
	start := time.Now()
	code, _, body := call(t, "POST", base+"/api/tap", a.Token, "", nil)
	dur := time.Since(start)
	done()
	if code != 202 || dur > 2*time.Second {
		t.Fatalf("tap while a checkpoint is on its way: %d %s after %v", code, body, dur)
	}
	if err := <-took; err != nil {
		t.Fatal(err)
	}
	t.Logf("tap answered in %v while the checkpoint was held", dur)
	if age := metricValue(t, base, "tapwars_checkpoint_age_seconds"); age < 0 || age > 60 {
		t.Fatalf("tapwars_checkpoint_age_seconds %v after a checkpoint", age)
	}
	if _, body := readyz(t, base); !strings.HasPrefix(body["checkpoint_age"], "newest ") || body["checkpoint"] != "ok" {
		t.Fatalf("readyz after a checkpoint: %v", body)
	}
}

// Two instances in one process, each of its own game (its own Redis and
// Kafka): a checkpoint one takes shows in its own
// tapwars_checkpoint_age_seconds only; the other still knows none (-1),
// as its /readyz says. Before, the gauge read one process-wide value, and
// the second instance showed the first one's checkpoint.
func TestCheckpointAgeIsPerInstance(t *testing.T) {
	env := map[string]string{"CHECKPOINT_INTERVAL": "1h"}
	a := instance(t, testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic), env)
	b := instance(t, testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic), env)
	p := join(t, a.URL(), "ada")
	tapN(t, a.URL(), p, 1)
	waitTotals(t, a.URL(), map[*joined]int64{&p: 1})
	if ok, err := a.Checkpointer.Take(context.Background()); err != nil || !ok {
		t.Fatalf("checkpoint of a: written %v, %v", ok, err)
	}
	if age := metricValue(t, a.URL(), "tapwars_checkpoint_age_seconds"); age < 0 || age > 60 {
		t.Fatalf("a's tapwars_checkpoint_age_seconds %v after its checkpoint", age)
	}
	if age := metricValue(t, b.URL(), "tapwars_checkpoint_age_seconds"); age != -1 {
		t.Fatalf("b's tapwars_checkpoint_age_seconds %v: it shows a's checkpoint", age)
	}
	if _, body := readyz(t, b.URL()); body["checkpoint_age"] != "none yet" {
		t.Fatalf("b's readyz: %v", body)
	}
}

// CHECKPOINT_INTERVAL=0 turns checkpoints off both ways: a wiped Redis is
// rebuilt from the whole log, never from a checkpoint an earlier run left
// (which may be old). Before, it still loaded the newest checkpoint.
func TestCheckpointIntervalZeroLoadsNoCheckpoint(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	first := instance(t, r, k, map[string]string{"CHECKPOINT_INTERVAL": "1h"})
	base := first.URL()
	a, b := join(t, base, "ann"), join(t, base, "bob")
	tapN(t, base, a, 3)
	tapN(t, base, b, 4)
	waitTotals(t, base, map[*joined]int64{&a: 3, &b: 4})
	if ok, err := first.Checkpointer.Take(context.Background()); err != nil || !ok {
		t.Fatalf("checkpoint: %v %v", ok, err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	r.Client().FlushAll(context.Background())

	var mu sync.Mutex
	froms := map[int32]int64{}
	second := startApp(t, r, k, map[string]string{"CHECKPOINT_INTERVAL": "0"}, func(m *app.Main) {
		m.ConsumerOptions.BeforeApply = func(b game.Batch) {
			mu.Lock()
			if f, ok := froms[b.Partition]; !ok || b.From < f {
				froms[b.Partition] = b.From
			}
			mu.Unlock()
		}
	})
	waitTotals(t, second.URL(), map[*joined]int64{&a: 3, &b: 4})
	mu.Lock()
	defer mu.Unlock()
	for p, from := range froms {
		if from != 0 {
			t.Fatalf("partition %d rebuilt from offset %d: a checkpoint was loaded with CHECKPOINT_INTERVAL=0", p, from)
		}
	}
	if len(froms) == 0 {
		t.Fatal("nothing was replayed")
	}
}

// The newest checkpoint exists but its chunks are gone (deleted records):
// a rebuild of a wiped Redis does not go on as if there were none. It
// logs an error, counts it, and /readyz names it, until it can read it.
func TestUnreadableCheckpointIsLoud(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	var logs syncBuf
	m := startApp(t, r, k, map[string]string{"CHECKPOINT_INTERVAL": "1h"}, func(m *app.Main) { m.LogOutput = &logs })
	base := m.URL()
	a := join(t, base, "cy")
	tapN(t, base, a, 2)
	waitTotals(t, base, map[*joined]int64{&a: 2})
	if ok, err := m.Checkpointer.Take(context.Background()); err != nil || !ok {
		t.Fatalf("checkpoint: %v %v", ok, err)
	}
	// Every record but the head goes.
	end := int64(len(testenv.TopicMessages(t, k.Addrs(), stream.CheckpointTopic)))
	if err := k.Cluster.DeleteRecords(stream.CheckpointTopic, 0, end-1); err != nil {
		t.Fatal(err)
	}
	r.Client().FlushAll(context.Background())
	testenv.Eventually(t, 20*time.Second, func() string {
		code, body := readyz(t, base)
		if code != 503 || !strings.Contains(body["checkpoint"], "cannot be read") {
			return "readyz: " + body["checkpoint"]
		}
		return ""
	})
	if n := metricValue(t, base, `tapwars_log_problems_total{problem="checkpoint_unreadable"}`); n < 1 {
		t.Fatalf("checkpoint_unreadable counted %v times", n)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "chunks are missing") {
		t.Fatalf("no error line naming the cause:\n%s", logs.String())
	}
	if n, _ := r.Client().Exists(context.Background(), "game:offsets").Result(); n != 0 {
		t.Fatal("the log was replayed as if there were no checkpoint")
	}
}
