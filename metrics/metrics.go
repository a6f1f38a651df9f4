// Package metrics declares tapwars' Prometheus metrics in one place. Every
// metric is prefixed tapwars_ and registered on Registry, which /metrics serves.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/tapwars/tapwars/game"
)

// Registry holds tapwars' metrics plus the Go and process collectors.
var Registry = prometheus.NewRegistry()

var (
	TapsAccepted = counter("taps_accepted_total", "Taps acknowledged by Kafka and answered 202.")
	TapsApplied  = counter("taps_applied_total", "Taps counted into Redis by this instance's consumer.")
	TapsRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tapwars_taps_rejected_total", Help: "Tap requests refused, by reason.",
	}, []string{"reason"})
	TapsSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tapwars_taps_skipped_total", Help: "Records or taps on the topic the consumer skipped, by reason (poison, unknown player, old round).",
	}, []string{"reason"})
	ApplyErrors      = counter("apply_errors_total", "Failed attempts to apply a batch to Redis (retried).")
	DuplicateBatches = counter("duplicate_batches_total", "Batches delivered again whose records were already counted.")
	TopicRebases     = counter("topic_rebases_total", "Times the offsets in Redis were moved to a game-taps with another topic id (recreated, or another cluster).")
	ConsumerLag      = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tapwars_consumer_lag", Help: "Records not yet applied, per partition consumed by this instance.",
	}, []string{"partition"})
	Rebuilding = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tapwars_rebuilding", Help: "1 while this instance replays the log into a store that lost (or never had) the state of a partition it consumes.",
	})
	BatchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "tapwars_batch_size", Help: "Records per applied batch.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 8),
	})
	ApplyLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "tapwars_apply_seconds", Help: "Time to apply one batch to Redis.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	OpenConnections = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tapwars_open_connections", Help: "Open TCP connections of the game's listener (any request, live streams included).",
	})
	LiveConnections = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tapwars_live_connections", Help: "Open live connections on this instance, by transport.",
	}, []string{"transport"})
	TapAckSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "tapwars_tap_ack_seconds", Help: "Time from a tap's arrival (after its rules) until Kafka acknowledged it, over HTTP and WebSocket alike.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	BroadcastSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "tapwars_broadcast_seconds", Help: "Time from reading a state update until it was written to (all but 1% of) the live clients.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	DroppedFrames = counter("dropped_frames_total", "Live updates a slow client skipped because a newer one replaced it.")
	HTTPRequests  = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tapwars_http_requests_total", Help: "HTTP requests by route and status.",
	}, []string{"route", "status"})
	LimitRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tapwars_limit_refusals_total", Help: "Requests refused by a limit, by limit (the setting that raises it is in the refusal's message).",
	}, []string{"limit"})
	PartitionFailingSince = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tapwars_partition_failing_since_seconds", Help: "Unix time since which a partition consumed by this instance fails to apply (0 while it applies).",
	}, []string{"partition"})
)

// Known label values, created at zero (the consumer's skip reasons are
// created by package stream, which names them) when the process starts so that
// dashboards show 0 rather than "no data" and absent() alerts stay quiet.
var (
	Transports = []string{"ws", "sse"}
	Limits     = []string{"taps_per_player", "joins_per_address", "joins_total", "connections_per_address", "connections_total", "admin_logins",
		"tcp_connections_per_address", "tcp_connections_total"}
	// RejectReasons are the error codes a tap can be refused with.
	RejectReasons = []string{game.EINVALID, game.EUNAUTHORIZED, game.EFORBIDDEN, game.ETOOMANY, game.EUNAVAILABLE,
		game.EMEDIATYPE, game.ETOOLARGE, game.ETIMEOUT, game.ECONFLICT, game.EPENDING}
)

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "tapwars_" + name, Help: help})
}

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		TapsAccepted, TapsApplied, TapsRejected, TapsSkipped, UnappliedFacts, ApplyErrors, DuplicateBatches,
		ConsumerLag, Rebuilding, BatchSize, ApplyLatency, TapAckSeconds, LiveConnections, BroadcastSeconds, DroppedFrames, HTTPRequests,
		LimitRefusals, PartitionFailingSince, OpenConnections,
		TopicRebases,
	)
	for _, v := range Transports {
		LiveConnections.WithLabelValues(v)
	}
	for _, v := range Limits {
		LimitRefusals.WithLabelValues(v)
	}
	for _, v := range RejectReasons {
		TapsRejected.WithLabelValues(v)
	}
}
