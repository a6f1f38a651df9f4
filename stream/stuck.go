package stream

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/metrics"
)

// StuckAfter is how long a partition may fail to apply before it is
// reported stuck: at /readyz and in the log at error level. Alert on
// time() - tapwars_partition_failing_since_seconds > 5, where it is not 0.
const StuckAfter = 5 * time.Second

// stuckPartitions remembers, per partition, since when and why its batches
// fail to apply. Taps keep being accepted into Kafka meanwhile; nothing is
// lost, but nothing is counted either, so it must never be silent.
type stuckPartitions struct {
	log *slog.Logger

	mu       sync.Mutex
	failing  map[int32]failure
	reported map[int32]bool
}

type failure struct {
	since  time.Time
	reason string
}

func newStuckPartitions(log *slog.Logger) *stuckPartitions {
	return &stuckPartitions{log: log, failing: map[int32]failure{}, reported: map[int32]bool{}}
}

// failed records a failed attempt to apply a batch of p.
func (s *stuckPartitions) failed(p int32, err error, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.failing[p]
	if !ok {
		f = failure{since: now}
	}
	f.reason = shortReason(err)
	s.failing[p] = f
	stuck := now.Sub(f.since)
	metrics.PartitionFailingSince.WithLabelValues(strconv.Itoa(int(p))).Set(float64(f.since.Unix()))
	if stuck >= StuckAfter && !s.reported[p] {
		s.reported[p] = true
		s.log.Error("partition cannot be applied: its taps are safe in Kafka but not counted until this is fixed",
			"partition", p, "for", stuck.Round(time.Second), "reason", f.reason, "err", err)
	}
}

// applied records that p applies again.
func (s *stuckPartitions) applied(p int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.failing[p]; ok {
		if s.reported[p] {
			s.log.Info("partition applies again", "partition", p, "after", time.Since(f.since).Round(time.Second))
		}
		delete(s.failing, p)
		delete(s.reported, p)
		metrics.PartitionFailingSince.WithLabelValues(strconv.Itoa(int(p))).Set(0)
	}
}

// released forgets p when it is no longer this instance's.
func (s *stuckPartitions) released(p int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failing, p)
	delete(s.reported, p)
	metrics.PartitionFailingSince.DeleteLabelValues(strconv.Itoa(int(p)))
}

// check returns an error naming the partitions stuck longer than
// StuckAfter, or nil.
func (s *stuckPartitions) check(now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []int32
	for p, f := range s.failing {
		if now.Sub(f.since) >= StuckAfter {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString("; ")
		}
		f := s.failing[p]
		fmt.Fprintf(&b, "partition %d not applied for %s: %s", p, now.Sub(f.since).Round(time.Second), f.reason)
	}
	return game.Errorf(game.EUNAVAILABLE, "%s", b.String())
}

// shortReason is what an operator needs to know of an apply error, without
// the script or connection details: Redis down, or Redis' own first line.
func shortReason(err error) string {
	if game.ErrorCode(err) == game.EUNAVAILABLE {
		return "Redis did not answer"
	}
	for errors.Unwrap(err) != nil { // the innermost cause: Redis' own words
		err = errors.Unwrap(err)
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	msg, _, _ = strings.Cut(msg, " script: ") // the script's hash and line
	if len(msg) > 120 {
		msg = msg[:120] + "…"
	}
	return msg
}
