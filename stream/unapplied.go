package stream

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/tapwars/tapwars/metrics"
)

// unappliedFacts remembers the facts the consumer had to skip. Taps of
// other producers (kcat, the old game) may be poison and are skipped
// quietly; a fact (a record with the type header) only tapwars writes, and
// its writer refuses what the consumer cannot read, so one skipped is a bug
// that leaves the state short of the log: an ERROR, a metric and a note at
// /readyz, never silence.
type unappliedFacts struct {
	log *slog.Logger

	mu   sync.Mutex
	n    int64
	last string
	seen map[int32]int64 // per partition, the highest offset counted: a batch read again (a retry, a rebalance) counts nothing twice
}

// skipped records that the fact at p/offset was not applied, and why.
func (u *unappliedFacts) skipped(p int32, offset int64, typ string, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if off, ok := u.seen[p]; ok && offset <= off {
		return
	}
	if u.seen == nil {
		u.seen = map[int32]int64{}
	}
	u.seen[p] = offset
	u.n++
	u.last = fmt.Sprintf("partition %d offset %d (%s): %s", p, offset, typ, shortReason(err))
	metrics.UnappliedFacts.Inc()
	u.log.Error("a record tapwars wrote cannot be applied: the game state lacks it",
		"partition", p, "offset", offset, "type", typ, "err", err)
}

// note says how many facts were skipped and the last one, or "".
func (u *unappliedFacts) note() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n == 0 {
		return ""
	}
	return fmt.Sprintf("%d records tapwars wrote could not be applied since this instance started (see the log); the last: %s", u.n, u.last)
}
