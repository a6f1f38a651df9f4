package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Problems with the log the consumer or the checkpoints met, by problem
// (Problems). Each also logs at error level and shows at /readyz.
var LogProblems = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "tapwars_log_problems_total",
	Help: "Records lost before they were applied (deleted by retention or DeleteRecords), stored offsets past the log's end, checkpoints that could not be read, " +
		"game keys deleted under the store, and records tapwars wrote that the consumer could not apply. Alert on any.",
}, []string{"problem"})

// Problems are the values of LogProblems' label.
const (
	ProblemDeleted      = "deleted_before_applied"
	ProblemPastEnd      = "offset_past_end"
	ProblemCheckpoint   = "checkpoint_unreadable"
	ProblemInconsistent = "store_inconsistent"
	ProblemUnapplied    = "fact_unapplied"
)

// Problems lists every problem, created at zero.
var Problems = []string{ProblemDeleted, ProblemPastEnd, ProblemCheckpoint, ProblemInconsistent, ProblemUnapplied}

// UnappliedFacts is LogProblems{problem="fact_unapplied"} under the name it
// had before the problems were counted together, so dashboards and alerts
// on it keep working.
var UnappliedFacts = prometheus.NewCounterFunc(prometheus.CounterOpts{
	Name: "tapwars_unapplied_facts_total",
	Help: "Records tapwars wrote (joins, kicks, rounds, imports) that the consumer could not apply and skipped: the state lacks them. The same count as tapwars_log_problems_total{problem=\"fact_unapplied\"}.",
}, func() float64 {
	var m dto.Metric
	_ = LogProblems.WithLabelValues(ProblemUnapplied).Write(&m) // a counter's Write cannot fail
	return m.GetCounter().GetValue()
})

// NewCheckpointAge is tapwars_checkpoint_age_seconds of one instance:
// the age of the newest checkpoint newest says it knows (zero: none yet).
// Each instance serves its own beside Registry, so instances in one
// process never show each other's.
func NewCheckpointAge(newest func() time.Time) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tapwars_checkpoint_age_seconds",
		Help: "Age of the newest checkpoint on game-checkpoints this instance knows (-1: none known yet). Alert when it exceeds a few CHECKPOINT_INTERVALs.",
	}, func() float64 {
		at := newest()
		if at.IsZero() {
			return -1
		}
		return time.Since(at).Seconds()
	})
}

func init() {
	Registry.MustRegister(LogProblems)
	for _, v := range Problems {
		LogProblems.WithLabelValues(v)
	}
}
