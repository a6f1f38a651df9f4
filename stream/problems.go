package stream

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/metrics"
)

// problems are what the consumer found wrong between the store and the
// log, by problem (the label of tapwars_log_problems_total, which also
// names each part of /readyz's "log" detail). None is skipped silently:
// each is logged at error level once, counted, and shown at /readyz.
//
//   - deleted_before_applied: records the store never applied were deleted
//     (retention, DeleteRecords) before it could. Their taps are lost; the
//     game goes on with the rest, so /readyz shows it (the "log" detail)
//     without failing.
//   - offset_past_end: the store holds an offset past the log's end (the
//     log was truncated, or the topic recreated or replaced). Applying on
//     would take the new records for ones already counted, so the
//     partition is not applied, and /readyz fails, until Redis no longer
//     holds that offset (rebuilt from the log after FLUSHALL).
//   - fact_unapplied: a record tapwars wrote (a fact: join, kick, round,
//     import) could not be applied and was skipped. Taps of other
//     producers (kcat, the old game) may be poison and are skipped
//     quietly; a fact only tapwars writes, and its writer refuses what the
//     consumer cannot read, so one skipped is a bug that leaves the state
//     short of the log. /readyz notes it without failing.
//   - store_inconsistent: game keys were deleted under the projection; the
//     consumer rebuilds it from the log (counted and logged only).
//
// checkpoint_unreadable is counted by the checkpoints' reader (package
// ledger), which /readyz asks on its own ("checkpoint").
type problems struct {
	log *slog.Logger

	mu        sync.Mutex
	deleted   map[int32]deletion
	pastEnd   map[int32]pastEnd
	unapplied unappliedFacts
}

type deletion struct {
	stored, oldest int64 // stored -1: the store held nothing of the partition
	at             time.Time
}

type pastEnd struct{ stored, end int64 }

// unappliedFacts counts the facts skipped and keeps the last one's note.
type unappliedFacts struct {
	n    int64
	last string
	seen map[int32]int64 // per partition, the highest offset counted: a batch read again (a retry, a rebalance) counts nothing twice
}

func newProblems(log *slog.Logger) *problems {
	return &problems{log: log, deleted: map[int32]deletion{}, pastEnd: map[int32]pastEnd{},
		unapplied: unappliedFacts{seen: map[int32]int64{}}}
}

// report counts one problem and logs it at error level.
func (ps *problems) report(problem, msg string, args ...any) {
	metrics.LogProblems.WithLabelValues(problem).Inc()
	ps.log.Error(msg, append(args, "problem", problem)...)
}

// reportDeleted records that p's records from stored (-1: from the log's
// start) to oldest were deleted before the store applied them.
func (ps *problems) reportDeleted(p int32, stored, oldest int64) {
	ps.mu.Lock()
	if d, ok := ps.deleted[p]; ok && d.oldest == oldest && d.stored == stored {
		ps.mu.Unlock()
		return // reported already
	}
	ps.deleted[p] = deletion{stored: stored, oldest: oldest, at: time.Now()}
	ps.mu.Unlock()
	ps.report(metrics.ProblemDeleted, "records the store never applied were deleted from the log (retention or DeleteRecords): their taps are lost",
		"partition", p, "stored", stored, "oldest", oldest, "lost", fmt.Sprintf("%d-%d", max(stored, 0), oldest-1))
}

// reportPastEnd records that the store holds offset stored of p, past the
// log's end.
func (ps *problems) reportPastEnd(p int32, stored, end int64) {
	ps.mu.Lock()
	_, known := ps.pastEnd[p]
	ps.pastEnd[p] = pastEnd{stored: stored, end: end}
	ps.mu.Unlock()
	if known {
		return
	}
	ps.report(metrics.ProblemPastEnd, "the store holds an offset past the log's end (the log was truncated, or the topic recreated or replaced): "+
		"the partition is not applied, so no new tap is taken for one already counted; rebuild Redis from the log (FLUSHALL) to go on",
		"partition", p, "stored", stored, "end", end)
}

// reportUnapplied records that the fact at p/offset was not applied, and
// why.
func (ps *problems) reportUnapplied(p int32, offset int64, typ string, err error) {
	ps.mu.Lock()
	u := &ps.unapplied
	if off, ok := u.seen[p]; ok && offset <= off {
		ps.mu.Unlock()
		return
	}
	u.seen[p] = offset
	u.n++
	u.last = fmt.Sprintf("partition %d offset %d (%s): %s", p, offset, typ, shortReason(err))
	ps.mu.Unlock()
	ps.report(metrics.ProblemUnapplied, "a record tapwars wrote cannot be applied: the game state lacks it",
		"partition", p, "offset", offset, "type", typ, "err", err)
}

// isPastEnd reports whether p waits for the store to drop an offset past
// the log's end.
func (ps *problems) isPastEnd(p int32) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	_, ok := ps.pastEnd[p]
	return ok
}

// clearPastEnd records that the store no longer holds an offset of p past
// the log's end.
func (ps *problems) clearPastEnd(p int32) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	delete(ps.pastEnd, p)
}

// pastEndError is /readyz's reason while a partition is held by
// offset_past_end.
func (ps *problems) pastEndError() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if len(ps.pastEnd) == 0 {
		return nil
	}
	var parts []string
	for p, e := range ps.pastEnd {
		parts = append(parts, fmt.Sprintf("partition %d: Redis holds offset %d, the log ends at %d", p, e.stored, e.end))
	}
	sort.Strings(parts)
	return game.Errorf(game.EUNAVAILABLE, "the log is behind Redis (truncated or recreated), taps are not counted: %s; rebuild Redis from the log (FLUSHALL)", strings.Join(parts, "; "))
}

// unappliedNote says how many facts were skipped and the last one, or "";
// ps.mu is held.
func (ps *problems) unappliedNote() string {
	u := ps.unapplied
	if u.n == 0 {
		return ""
	}
	return fmt.Sprintf("%d records tapwars wrote could not be applied since this instance started (%s, see the log); the last: %s", u.n, metrics.ProblemUnapplied, u.last)
}

// detail is /readyz's "log" detail: the records deleted before they were
// applied and the facts skipped, each naming its problem; "ok" when none.
func (ps *problems) detail() string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var parts []string
	for p, d := range ps.deleted {
		parts = append(parts, fmt.Sprintf("partition %d: records %d-%d deleted before they were applied (%s, seen %s)",
			p, max(d.stored, 0), d.oldest-1, metrics.ProblemDeleted, d.at.UTC().Format(time.TimeOnly)))
	}
	sort.Strings(parts)
	if len(parts) > 0 {
		parts[0] = "taps lost: " + parts[0]
	}
	if note := ps.unappliedNote(); note != "" {
		parts = append(parts, note)
	}
	if len(parts) == 0 {
		return "ok"
	}
	return strings.Join(parts, "; ")
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
		h.c.problems.clearPastEnd(p)
		h.c.log.Info("the store no longer holds an offset past the log's end: applying the partition again", "partition", p)
		return true
	}
}

// LogDetail says, for /readyz, which records were deleted before they
// were applied and which facts could not be applied ("ok" when none).
func (c *Consumer) LogDetail(context.Context) string { return c.problems.detail() }
