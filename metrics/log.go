package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CheckpointAt is the time (unix ms) of the newest checkpoint this instance
// wrote or read; 0 while it knows none.
var CheckpointAt atomic.Int64

// Problems with the log the consumer or the checkpoints met, by problem
// (LogProblemKinds). Each also logs at error level and shows at /readyz.
var LogProblems = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "tapwars_log_problems_total",
	Help: "Records lost before they were applied (deleted by retention or DeleteRecords), stored offsets past the log's end, and checkpoints that could not be read.",
}, []string{"problem"})

// Kinds of LogProblems.
const (
	ProblemDeleted      = "deleted_before_applied"
	ProblemPastEnd      = "offset_past_end"
	ProblemCheckpoint   = "checkpoint_unreadable"
	ProblemInconsistent = "store_inconsistent"
)

// CheckpointAge is the age of the newest checkpoint this instance knows.
var CheckpointAge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
	Name: "tapwars_checkpoint_age_seconds",
	Help: "Age of the newest checkpoint on game-checkpoints this instance knows (-1: none known yet). Alert when it exceeds a few CHECKPOINT_INTERVALs.",
}, func() float64 {
	at := CheckpointAt.Load()
	if at == 0 {
		return -1
	}
	return time.Since(time.UnixMilli(at)).Seconds()
})

func init() {
	Registry.MustRegister(LogProblems, CheckpointAge)
	for _, v := range []string{ProblemDeleted, ProblemPastEnd, ProblemCheckpoint, ProblemInconsistent} {
		LogProblems.WithLabelValues(v)
	}
}
