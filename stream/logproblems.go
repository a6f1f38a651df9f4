package stream

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/metrics"
)

// logProblems are what the consumer found wrong between the store and the
// log. None is skipped silently: each is logged at error level, counted in
// tapwars_log_problems_total and shown at /readyz.
//
//   - deleted: records the store never applied were deleted (retention,
//     DeleteRecords) before it could. Their taps are lost; the game goes on
//     with the rest, so /readyz shows it (the "log" detail) without
//     failing.
//   - pastEnd: the store holds an offset past the log's end (the log was
//     truncated, or the topic recreated or replaced). Applying on would
//     take the new records for ones already counted, so the partition is
//     not applied, and /readyz fails, until Redis no longer holds that
//     offset (rebuilt from the log after FLUSHALL).
type logProblems struct {
	mu      sync.Mutex
	deleted map[int32]deletion
	pastEnd map[int32]pastEnd
}

type deletion struct {
	stored, oldest int64 // stored -1: the store held nothing of the partition
	at             time.Time
}

type pastEnd struct{ stored, end int64 }

// reportDeleted records that p's records from stored (-1: from the log's
// start) to oldest were deleted before the store applied them.
func (c *Consumer) reportDeleted(p int32, stored, oldest int64) {
	lp := &c.problems
	lp.mu.Lock()
	if d, ok := lp.deleted[p]; ok && d.oldest == oldest && d.stored == stored {
		lp.mu.Unlock()
		return // reported already
	}
	if lp.deleted == nil {
		lp.deleted = map[int32]deletion{}
	}
	lp.deleted[p] = deletion{stored: stored, oldest: oldest, at: time.Now()}
	lp.mu.Unlock()
	metrics.LogProblems.WithLabelValues(metrics.ProblemDeleted).Inc()
	from := max(stored, 0)
	c.log.Error("records the store never applied were deleted from the log (retention or DeleteRecords): their taps are lost",
		"partition", p, "stored", stored, "oldest", oldest, "lost", fmt.Sprintf("%d-%d", from, oldest-1))
}

// reportPastEnd records that the store holds offset stored of p, past the
// log's end.
func (c *Consumer) reportPastEnd(p int32, stored, end int64) {
	lp := &c.problems
	lp.mu.Lock()
	if lp.pastEnd == nil {
		lp.pastEnd = map[int32]pastEnd{}
	}
	_, known := lp.pastEnd[p]
	lp.pastEnd[p] = pastEnd{stored: stored, end: end}
	lp.mu.Unlock()
	if known {
		return
	}
	metrics.LogProblems.WithLabelValues(metrics.ProblemPastEnd).Inc()
	c.log.Error("the store holds an offset past the log's end (the log was truncated, or the topic recreated or replaced): "+
		"the partition is not applied, so no new tap is taken for one already counted; rebuild Redis from the log (FLUSHALL) to go on",
		"partition", p, "stored", stored, "end", end)
}

// isPastEnd reports whether p waits for the store to drop an offset past
// the log's end.
func (c *Consumer) isPastEnd(p int32) bool {
	c.problems.mu.Lock()
	defer c.problems.mu.Unlock()
	_, ok := c.problems.pastEnd[p]
	return ok
}

// waitPastEnd holds the claim of p until the store no longer holds an
// offset past the log's end; false when the session ended first.
func (h *groupHandler) waitPastEnd(ctx context.Context, p int32) bool {
	t := time.NewTicker(h.c.opt.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		offs, err := h.c.app.Offsets(ctx, Topic, []int32{p})
		if err != nil {
			continue
		}
		end, err := h.c.client.GetOffset(Topic, p, sarama.OffsetNewest)
		if err != nil {
			continue
		}
		if off, ok := offs[p]; ok && off > end {
			continue
		}
		h.c.problems.mu.Lock()
		delete(h.c.problems.pastEnd, p)
		h.c.problems.mu.Unlock()
		h.c.log.Info("the store no longer holds an offset past the log's end: applying the partition again", "partition", p)
		return true
	}
}

// pastEndError is /readyz's reason while a partition is held by pastEnd.
func (c *Consumer) pastEndError() error {
	c.problems.mu.Lock()
	defer c.problems.mu.Unlock()
	if len(c.problems.pastEnd) == 0 {
		return nil
	}
	var parts []string
	for p, e := range c.problems.pastEnd {
		parts = append(parts, fmt.Sprintf("partition %d: Redis holds offset %d, the log ends at %d", p, e.stored, e.end))
	}
	sort.Strings(parts)
	return game.Errorf(game.EUNAVAILABLE, "the log is behind Redis (truncated or recreated), taps are not counted: %s; rebuild Redis from the log (FLUSHALL)", strings.Join(parts, "; "))
}

// LogDetail says, for /readyz, which records were deleted before they
// were applied ("ok" when none).
func (c *Consumer) LogDetail(context.Context) string {
	unapplied := c.unapplied.note()
	c.problems.mu.Lock()
	defer c.problems.mu.Unlock()
	if len(c.problems.deleted) == 0 {
		if unapplied != "" {
			return unapplied
		}
		return "ok"
	}
	var parts []string
	for p, d := range c.problems.deleted {
		parts = append(parts, fmt.Sprintf("partition %d: records %d-%d deleted before they were applied (seen %s)", p, max(d.stored, 0), d.oldest-1, d.at.UTC().Format(time.TimeOnly)))
	}
	sort.Strings(parts)
	if unapplied != "" {
		parts = append(parts, unapplied)
	}
	return "taps lost: " + strings.Join(parts, "; ")
}
