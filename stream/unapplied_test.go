package stream_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	dto "github.com/prometheus/client_model/go"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/metrics"
	"github.com/tapwars/tapwars/stream"
)

// syncBuffer is a log destination safe for the consumer's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A record over the consumer's limit is refused by the writer before
// anything is written; one that reaches the log anyway (an older writer)
// is an ERROR, a metric and a note, not a silent skip, and the records
// after it are applied. The metric is a problem of the log like the others
// (tapwars_log_problems_total{problem="fact_unapplied"}), still counted
// under its old name too.
func TestFactsTheConsumerCannotApply(t *testing.T) {
	e := newEnv(t, 1)
	p := e.producer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	big := game.User{ID: "big", Username: strings.Repeat("x", stream.MaxEventBytes), Team: game.Blue}
	err := stream.NewFacts(p).Join(ctx, big)
	if game.ErrorCode(err) != game.ETOOLARGE || !strings.Contains(game.ErrorMessage(err), "over the 4096 bytes the consumer reads") {
		t.Fatalf("join of a %d-byte record: %v", len(big.Username), err)
	}
	client, err := sarama.NewClient(e.k.Addrs(), sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for part := range int32(4) {
		if end, err := client.GetOffset(stream.Topic, part, sarama.OffsetNewest); err != nil || end != 0 {
			t.Fatalf("partition %d ends at %d (%v): the refused record was written", part, end, err)
		}
	}

	// Written past the check, as a writer without it would.
	v, err := stream.EncodeFact(game.Fact{Type: game.FactJoin, User: &big})
	if err != nil {
		t.Fatal(err)
	}
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	sp, err := sarama.NewSyncProducer(e.k.Addrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: stream.Topic, Key: sarama.StringEncoder(big.ID), Value: sarama.ByteEncoder(v),
		Headers: []sarama.RecordHeader{{Key: []byte(stream.TypeHeader), Value: []byte(game.FactJoin)}}}); err != nil {
		t.Fatal(err)
	}
	before, beforeProblems := unappliedFacts(t), problems(t, metrics.ProblemUnapplied)
	var logs syncBuffer
	c, err := stream.NewConsumer(e.cfg, e.st, slog.New(slog.NewTextHandler(&logs, nil)), stream.ConsumerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(runCtx) }()
	defer func() { stop(); _ = c.Close(); <-done }()
	if d := c.LogDetail(ctx); d != "ok" {
		t.Fatalf("a note before anything was skipped: %s", d)
	}
	e.produce(t, p, 20) // applied after it
	e.check(t)
	testenv.Eventually(t, 10*time.Second, func() string {
		if c.LogDetail(ctx) == "ok" {
			return "no note"
		}
		return ""
	})
	note := c.LogDetail(ctx) // nothing was deleted: the note alone
	if !strings.Contains(note, "1 records tapwars wrote could not be applied") || !strings.Contains(note, "(join)") || !strings.Contains(note, "limit 4096") {
		t.Errorf("note: %s", note)
	}
	if got := unappliedFacts(t) - before; got != 1 {
		t.Errorf("tapwars_unapplied_facts_total went up by %v, want 1", got)
	}
	if got := problems(t, metrics.ProblemUnapplied) - beforeProblems; got != 1 {
		t.Errorf("tapwars_log_problems_total{problem=%q} went up by %v, want 1", metrics.ProblemUnapplied, got)
	}
	if d := c.LogDetail(ctx); d != note || !strings.Contains(d, metrics.ProblemUnapplied) {
		t.Errorf("readyz log detail %q, want the note naming its problem", d)
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "a record tapwars wrote cannot be applied") {
		t.Errorf("no ERROR in the log:\n%s", l)
	}
}

func unappliedFacts(t *testing.T) float64 {
	t.Helper()
	var m dto.Metric
	if err := metrics.UnappliedFacts.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
