package handlers

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/stream"
	"github.com/tapwars/tapwars/views"
)

// adminStats: GET /admin/stats — the live panel (?format=json: its numbers).
func (s *Server) adminStats(c echo.Context) error {
	st, err := s.adminStatsData(c.Request().Context())
	if err != nil {
		return err
	}
	if c.QueryParam("format") == "json" {
		return c.JSON(http.StatusOK, st)
	}
	return render(c, http.StatusOK, views.AdminStatsPanel(st))
}

// adminStatsData reads the live numbers: the store's overview, Kafka's end
// offsets (lag = end - applied, right whichever instance consumes), this
// instance's consumer and live connections.
func (s *Server) adminStatsData(ctx context.Context) (views.AdminStats, error) {
	now := time.Now()
	ov, err := s.opt.Admin.Overview(ctx, stream.Topic, now, rateWindow)
	if err != nil {
		return views.AdminStats{}, err
	}
	st := views.AdminStats{
		Now: now, Round: ov.Round, BlueScore: ov.BlueScore, RedScore: ov.RedScore, TotalTaps: ov.TotalTaps,
		Players: ov.Players, Kicked: ov.Kicked, BlueOnline: ov.BlueOnline, RedOnline: ov.RedOnline, Rate: ov.Rate,
	}
	if s.hub != nil {
		n := s.hub.Count()
		st.WS, st.SSE = n["ws"], n["sse"]
	}
	parts := map[int32]*views.AdminPartition{}
	part := func(p int32) *views.AdminPartition {
		if parts[p] == nil {
			parts[p] = &views.AdminPartition{Partition: p, End: -1, Applied: -1, RoundStart: -1}
		}
		return parts[p]
	}
	for p, o := range ov.Offsets {
		part(p).Applied = o
	}
	for p, o := range ov.RoundStarts {
		part(p).RoundStart = o
	}
	if s.opt.Kafka != nil {
		kctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ends, err := s.opt.Kafka.HighWatermarks(kctx)
		cancel()
		if err != nil {
			st.KafkaError = err.Error()
		}
		for p, o := range ends {
			part(p).End = o
		}
	}
	if s.opt.ConsumerLag != nil {
		for p, l := range s.opt.ConsumerLag() {
			part(p).Owned, part(p).OwnLag = true, l
		}
	}
	for _, p := range parts {
		p.GroupLag = p.Lag()
		st.Partitions = append(st.Partitions, *p)
	}
	sort.Slice(st.Partitions, func(i, j int) bool { return st.Partitions[i].Partition < st.Partitions[j].Partition })
	return st, nil
}
