package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/app"
	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// txnTaps writes taps of players as one Kafka transaction by a writer of
// its own (as Kafka Connect or Kafka Streams in exactly-once mode would),
// and commits or aborts it.
func txnTaps(t *testing.T, addrs []string, id string, commit bool, taps map[*joined]int) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Transaction.ID = id
	cfg.Producer.Partitioner = sarama.NewConsistentCRCHashPartitioner // the app's, for keyed records
	cfg.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	for j, n := range taps {
		v, err := stream.EncodeEvent(game.TapEvent{ID: fmt.Sprintf("%s-%s", id, j.User.ID), UserID: j.User.ID, Username: j.User.Username,
			Team: j.User.Team, Timestamp: time.Now().UnixMilli(), SessionID: j.User.SessionID, Count: n})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: stream.Topic, Key: sarama.StringEncoder(j.User.ID), Value: sarama.ByteEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	if commit {
		err = p.CommitTxn()
	} else {
		err = p.AbortTxn()
	}
	if err != nil {
		t.Fatalf("end transaction %s: %v", id, err)
	}
}

// A transactional writer shares game-taps: a committed transaction's taps
// count, an aborted one's do not, and the transaction markers (offsets
// without a record for the consumer) stall no partition: the 2xx taps after
// them count and /readyz is ready, live and after a rebuild of a wiped
// Redis. Before, aborted taps counted (no isolation level) and the batch
// after a marker started past the stored offset, so the partition replayed
// nothing, forever.
func TestTransactionalWriterBetweenTaps(t *testing.T) {
	testenv.EachKafka(t, func(t *testing.T, kind string) {
		r, k := testenv.StartRedis(t), testenv.StartBroker(t, kind, 2, stream.Topic)
		m := startApp(t, r, k, map[string]string{"TAP_RATE_LIMIT": "0"}, nil)
		base := m.URL()
		a, b := join(t, base, "alma"), join(t, base, "bert")
		tapN(t, base, a, 2)
		tapN(t, base, b, 3)
		waitTotals(t, base, map[*joined]int64{&a: 2, &b: 3})

		// Each its own batch: the next batch begins after a marker.
		txnTaps(t, k.Addrs(), "committed", true, map[*joined]int{&a: 5, &b: 1})
		waitTotals(t, base, map[*joined]int64{&a: 2 + 5, &b: 3 + 1})
		txnTaps(t, k.Addrs(), "aborted", false, map[*joined]int{&a: 7, &b: 7})
		tapN(t, base, a, 1)
		tapN(t, base, b, 1)
		want := map[*joined]int64{&a: 2 + 5 + 1, &b: 3 + 1 + 1}
		waitTotals(t, base, want)
		testenv.Eventually(t, 10*time.Second, func() string {
			if code, body := readyz(t, base); code != 200 {
				return fmt.Sprintf("readyz %d %v", code, body)
			}
			return ""
		})

		r.Client().FlushAll(context.Background())
		tapN(t, base, a, 1) // wakes the partition at once
		want[&a]++
		waitTotals(t, base, want)
		testenv.Eventually(t, 10*time.Second, func() string {
			if code, body := readyz(t, base); code != 200 {
				return fmt.Sprintf("readyz after the rebuild %d %v", code, body)
			}
			return ""
		})

		// A transaction is the last thing on the log: its marker is the
		// log's end, which Redis' offsets reach (lag 0, round results can
		// post) though no record follows it.
		txnTaps(t, k.Addrs(), "last", true, map[*joined]int{&a: 2, &b: 2})
		want[&a] += 2
		want[&b] += 2
		waitTotals(t, base, want)
		testenv.Eventually(t, 10*time.Second, func() string {
			ends := logEnds(t, k.Addrs())
			for p, end := range ends {
				got, _ := r.Client().HGet(context.Background(), "game:offsets", fmt.Sprintf("%s/%d", stream.Topic, p)).Int64()
				if got != end {
					return fmt.Sprintf("partition %d: Redis at %d, the log ends at %d", p, got, end)
				}
			}
			return ""
		})
	})
}

// logEnds is the end offset of every partition of game-taps.
func logEnds(t *testing.T, addrs []string) map[int32]int64 {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	client, err := sarama.NewClient(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions(stream.Topic)
	if err != nil {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	for _, p := range parts {
		if ends[p], err = client.GetOffset(stream.Topic, p, sarama.OffsetNewest); err != nil {
			t.Fatal(err)
		}
	}
	return ends
}

// deleteAll deletes every record of every partition of topic (as
// retention would), and returns the partitions' ends.
func deleteAll(t *testing.T, addrs []string, topic string) map[int32]int64 {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	client, err := sarama.NewClient(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	for _, p := range parts {
		if ends[p], err = client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.DeleteRecords(topic, ends); err != nil {
		t.Fatalf("delete records: %v", err)
	}
	return ends
}

// Taps another instance acknowledged are deleted from the log (retention,
// DeleteRecords) before this store applied them: that is said loudly (an
// ERROR line with the offsets, tapwars_log_problems_total, /readyz "log"),
// and the game goes on with the taps after. Before, the consumer moved to
// the log's new start without a word.
func TestRecordsDeletedBeforeAppliedAreLoud(t *testing.T) {
	testenv.EachKafka(t, func(t *testing.T, kind string) {
		r, k := testenv.StartRedis(t), testenv.StartBroker(t, kind, 2, stream.Topic)
		env := map[string]string{"CHECKPOINT_INTERVAL": "0"}
		first := startApp(t, r, k, env, nil)
		a := join(t, first.URL(), "dora")
		tapN(t, first.URL(), a, 2)
		waitTotals(t, first.URL(), map[*joined]int64{&a: 2})
		// Records below the stored offsets (applied) go: nothing is lost,
		// nothing is said.
		deleteAll(t, k.Addrs(), stream.Topic)
		tapN(t, first.URL(), a, 1)
		waitTotals(t, first.URL(), map[*joined]int64{&a: 3})
		if _, body := readyz(t, first.URL()); body["log"] != "ok" {
			t.Fatalf("applied records deleted: readyz %v", body)
		}
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		// Another instance acknowledged 3 taps; retention takes them.
		prod, err := stream.NewProducer(stream.Config{Brokers: k.Addrs()})
		if err != nil {
			t.Fatal(err)
		}
		ev := game.TapEvent{ID: "other-instance", UserID: a.User.ID, Username: a.User.Username, Team: a.User.Team,
			Timestamp: time.Now().UnixMilli(), SessionID: a.User.SessionID, Count: 3}
		if err := prod.Send(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		_ = prod.Close()
		ends := deleteAll(t, k.Addrs(), stream.Topic)

		var logs syncBuf
		m := startApp(t, r, k, env, func(m *app.Main) { m.LogOutput = &logs })
		base := m.URL()
		testenv.Eventually(t, 10*time.Second, func() string {
			if _, body := readyz(t, base); !strings.HasPrefix(body["log"], "taps lost: partition ") {
				return fmt.Sprintf("readyz %v", body)
			}
			return ""
		})
		if n := metricValue(t, base, `tapwars_log_problems_total{problem="deleted_before_applied"}`); n < 1 {
			t.Fatalf("deleted_before_applied counted %v times", n)
		}
		if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "deleted from the log") {
			t.Fatalf("no error line:\n%s", out)
		}
		_, body := readyz(t, base)
		t.Logf("log ends %v; readyz log: %s", ends, body["log"])
		tapN(t, base, a, 1)
		waitTotals(t, base, map[*joined]int64{&a: 4})
	})
}

// Redis holds offsets past the log's end (the log was truncated): the
// partition is not applied, so a new 2xx tap is never taken for one
// already counted; it is said loudly (ERROR, metric, /readyz 503 naming
// it), and once Redis is rebuilt from the log (FLUSHALL) every tap counts.
// Before, the consumer replayed from the log's start as duplicates and the
// new taps were dropped without a word.
func TestOffsetsPastTheLogEndAreRefused(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	first := startApp(t, r, k, nil, nil)
	a := join(t, first.URL(), "eve")
	tapN(t, first.URL(), a, 2)
	waitTotals(t, first.URL(), map[*joined]int64{&a: 2})
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for p := range int32(2) {
		r.Client().HSet(ctx, "game:offsets", fmt.Sprintf("%s/%d", stream.Topic, p), 1000)
	}
	var logs syncBuf
	m := startApp(t, r, k, nil, func(m *app.Main) { m.LogOutput = &logs })
	base := m.URL()
	tapN(t, base, a, 1)
	testenv.Eventually(t, 10*time.Second, func() string {
		if code, body := readyz(t, base); code != 503 || !strings.Contains(body["state"], "the log is behind Redis") {
			return fmt.Sprintf("readyz %d %v", code, body)
		}
		return ""
	})
	if n := metricValue(t, base, `tapwars_log_problems_total{problem="offset_past_end"}`); n < 1 {
		t.Fatalf("offset_past_end counted %v times", n)
	}
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "past the log's end") {
		t.Fatalf("no error line:\n%s", out)
	}
	r.Client().FlushAll(ctx)
	waitTotals(t, base, map[*joined]int64{&a: 3})
	testenv.Eventually(t, 10*time.Second, func() string {
		if code, body := readyz(t, base); code != 200 {
			return fmt.Sprintf("readyz %d %v", code, body)
		}
		return ""
	})
}

// The old game's "clear all game state" (DEL game:users and the scores,
// from its troubleshooting section) no longer resets anything: the
// projection notices keys deleted under it, says so (ERROR, metric) and
// rebuilds them from the log, whether a tap arrives first (its player is
// unknown: an inconsistency to repair, never a tap to drop) or none does
// (the idle check). Every 2xx tap counts. Before, the taps after the DEL
// were answered 202 and dropped as "unknown player", and /readyz stayed ok.
func TestDeletedGameKeysAreRebuilt(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	m := startApp(t, r, k, map[string]string{"TAP_RATE_LIMIT": "0"}, nil)
	base := m.URL()
	a, b := join(t, base, "fay"), join(t, base, "gus")
	tapN(t, base, a, 3)
	tapN(t, base, b, 2)
	waitTotals(t, base, map[*joined]int64{&a: 3, &b: 2})
	ctx := context.Background()
	clear := func() {
		if err := r.Client().Del(ctx, "game:users", "game:team:blue:score", "game:team:red:score", "game:total:taps").Err(); err != nil {
			t.Fatal(err)
		}
	}

	clear()
	tapN(t, base, a, 1) // at once: its player is unknown to the store
	tapN(t, base, b, 1)
	waitTotals(t, base, map[*joined]int64{&a: 4, &b: 3})

	clear() // and no tap: the idle check notices
	waitTotals(t, base, map[*joined]int64{&a: 4, &b: 3})
	tapN(t, base, b, 1)
	waitTotals(t, base, map[*joined]int64{&a: 4, &b: 4})
	if n := metricValue(t, base, `tapwars_log_problems_total{problem="store_inconsistent"}`); n < 2 {
		t.Fatalf("store_inconsistent counted %v times, want 2", n)
	}
	if n := metricValue(t, base, `tapwars_taps_skipped_total{reason="unknown_player"}`); n > 0 {
		t.Logf("%v taps of unknown players were skipped on the way (and counted after the rebuild)", n)
	}
}
