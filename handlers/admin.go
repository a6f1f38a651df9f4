package handlers

// The operator's page (/admin): live numbers, new rounds, backup and
// restore, kicking players. See admin_auth.go for who may use it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/stream"
	"github.com/tapwars/tapwars/views"
)

// AdminStore is what the admin page needs from the store (store.Store).
type AdminStore interface {
	Overview(ctx context.Context, topic string, now time.Time, window time.Duration) (store.Overview, error)
	Reset(ctx context.Context, topic string, starts map[int32]int64, now time.Time) (store.ResetResult, error)
	Kick(ctx context.Context, id string, now time.Time) (int64, error)
	KickedIDs(ctx context.Context) ([]string, error)
	Export(ctx context.Context, now time.Time) (store.Export, error)
	Import(ctx context.Context, ex store.Export, topic string, starts map[int32]int64, now time.Time) (int64, error)
	SubscribeAdmin(ctx context.Context) <-chan struct{}
}

// KafkaInfo reads the end of the tap log (stream.Watermarks).
type KafkaInfo interface {
	// HighWatermarks returns the next offset of every partition of game-taps.
	HighWatermarks(ctx context.Context) (map[int32]int64, error)
}

// MaxImportBytes is the largest import file (the rest of the API keeps
// BodyLimit).
const MaxImportBytes = 64 << 20

// rateWindow is the span of the taps-per-second chart.
const rateWindow = 15 * time.Minute

// adminRoutes registers /admin and its actions.
func (s *Server) adminRoutes(e *echo.Echo) {
	e.GET("/admin", s.adminPage)
	e.POST("/admin/login", s.adminLogin)
	g := e.Group("/admin", s.requireAdmin)
	g.POST("/logout", s.adminLogout)
	g.GET("/stats", s.adminStats)
	g.GET("/reset", s.adminResetConfirm)
	g.POST("/reset", s.adminReset)
	g.GET("/export", s.adminExport)
	g.POST("/import", s.adminImport) // body limit: MaxImportBytes (see New)
	g.GET("/kick", s.adminKickConfirm)
	g.POST("/kick", s.adminKick)
	g.POST("/kick/:id", s.adminKick)
}

// wantsHTML tells browser form posts (answered with pages and redirects)
// from API calls (answered with JSON).
func wantsHTML(c echo.Context) bool {
	return c.Request().Header.Get(echo.HeaderAuthorization) == "" &&
		strings.Contains(c.Request().Header.Get(echo.HeaderAccept), "text/html")
}

// adminPage: GET /admin — the dashboard, or the login form.
func (s *Server) adminPage(c echo.Context) error {
	adminHeaders(c)
	a, err := s.authorize(c)
	if err != nil {
		if errors.Is(err, errAdminAuth) && c.Request().Header.Get(echo.HeaderAuthorization) == "" {
			return render(c, http.StatusOK, views.AdminLoginPage(""))
		}
		return err
	}
	d, err := s.adminData(c, a)
	if err != nil {
		return err
	}
	switch c.QueryParam("done") {
	case "reset":
		d.Flash = fmt.Sprintf("Round %d started: every score is zero.", d.Stats.Round)
	case "import":
		d.Flash = fmt.Sprintf("State imported (now round %d).", d.Stats.Round)
	case "kick":
		d.Flash = "Player kicked."
	case "login":
		d.Flash = "Logged in."
	}
	return render(c, http.StatusOK, views.AdminPage(d))
}

// adminLogin: POST /admin/login (form field token) — sets the admin cookie.
func (s *Server) adminLogin(c echo.Context) error {
	adminHeaders(c)
	key := clientKey(c)
	if s.admin.failures.blocked(key, time.Now()) || !s.admin.tokenOK(c.FormValue("token")) {
		if ok, wait := s.admin.failures.take(key, 1, time.Now()); !ok {
			err := tooMany(c, wait, "too many wrong admin tokens from your address")
			msg, _ := err.Message.(string)
			return render(c, http.StatusTooManyRequests, views.AdminLoginPage(msg))
		}
		return render(c, http.StatusUnauthorized, views.AdminLoginPage("That is not the admin token."))
	}
	s.setAdminCookie(c, s.admin.newSession(time.Now()), int(adminSessionTTL.Seconds()))
	return c.Redirect(http.StatusSeeOther, "/admin?done=login")
}

// adminLogout: POST /admin/logout — clears the admin cookie.
func (s *Server) adminLogout(c echo.Context) error {
	s.setAdminCookie(c, "", -1)
	if wantsHTML(c) || !adminOf(c).bearer {
		return c.Redirect(http.StatusSeeOther, "/admin")
	}
	return c.NoContent(http.StatusNoContent)
}

// adminStats: GET /admin/stats — the live panel (?format=json: its numbers).
func (s *Server) adminStats(c echo.Context) error {
	st, _, err := s.adminStatsData(c.Request().Context())
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
func (s *Server) adminStatsData(ctx context.Context) (views.AdminStats, store.Overview, error) {
	now := time.Now()
	ov, err := s.opt.Admin.Overview(ctx, stream.Topic, now, rateWindow)
	if err != nil {
		return views.AdminStats{}, ov, fmt.Errorf("%w: %w", game.ErrUnavailable, err)
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
	return st, ov, nil
}

// adminData is everything the dashboard shows.
func (s *Server) adminData(c echo.Context, a adminCtx) (views.AdminData, error) {
	ctx := c.Request().Context()
	st, _, err := s.adminStatsData(ctx)
	if err != nil {
		return views.AdminData{}, err
	}
	d := views.AdminData{CSRF: a.csrf, Stats: st}
	if snap, err := s.store.Snapshot(ctx, 10, time.Now()); err == nil {
		d.Top, d.Online = snap.Leaderboard, snap.Users
	}
	return d, nil
}

// adminFail shows a failed action: the dashboard with the message for a
// browser, the JSON error otherwise.
func (s *Server) adminFail(c echo.Context, code int, msg string) error {
	if !wantsHTML(c) {
		return echo.NewHTTPError(code, msg)
	}
	d, err := s.adminData(c, adminOf(c))
	if err != nil {
		return echo.NewHTTPError(code, msg)
	}
	d.Error = msg
	return render(c, code, views.AdminPage(d))
}

// kafkaEnds reads the high watermarks a reset or import starts the round at.
func (s *Server) kafkaEnds(ctx context.Context) (map[int32]int64, error) {
	if s.opt.Kafka == nil {
		return nil, errors.New("no Kafka client configured")
	}
	kctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return s.opt.Kafka.HighWatermarks(kctx)
}

const kafkaDownMsg = "Kafka did not answer, so the end of the tap log is unknown: nothing was changed; try again when Kafka is back"

// adminResetConfirm: GET /admin/reset — the browser's confirm step.
func (s *Server) adminResetConfirm(c echo.Context) error {
	d, err := s.adminData(c, adminOf(c))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.AdminResetPage(d))
}

type resetResponse struct {
	Round       int64            `json:"round"`
	Zeroed      int64            `json:"zeroed"`
	RoundStarts map[string]int64 `json:"roundStarts"`
	TookMs      float64          `json:"tookMs"`
}

// adminReset: POST /admin/reset — a new round. It reads the high watermark
// of every partition first: every tap acknowledged so far lies below it and
// never counts in the new round, even if it is still waiting in Kafka.
func (s *Server) adminReset(c echo.Context) error {
	ctx := c.Request().Context()
	start := time.Now()
	ends, err := s.kafkaEnds(ctx)
	if err != nil {
		s.log.Warn("admin reset: kafka end offsets", "err", err)
		return s.adminFail(c, http.StatusServiceUnavailable, kafkaDownMsg)
	}
	res, err := s.opt.Admin.Reset(ctx, stream.Topic, ends, time.Now())
	if err != nil {
		return fmt.Errorf("%w: %w", game.ErrUnavailable, err)
	}
	took := time.Since(start)
	s.log.Info("admin: new round", "round", res.Round, "playersZeroed", res.Zeroed, "starts", ends, "took", took)
	if wantsHTML(c) {
		return c.Redirect(http.StatusSeeOther, "/admin?done=reset")
	}
	starts := map[string]int64{}
	for p, o := range ends {
		starts[store.OffsetField(stream.Topic, p)] = o
	}
	return c.JSON(http.StatusOK, resetResponse{Round: res.Round, Zeroed: res.Zeroed, RoundStarts: starts,
		TookMs: float64(took.Microseconds()) / 1000})
}

// adminExport: GET /admin/export — the whole state as a JSON download.
func (s *Server) adminExport(c echo.Context) error {
	now := time.Now()
	ex, err := s.opt.Admin.Export(c.Request().Context(), now)
	if err != nil {
		return fmt.Errorf("%w: %w", game.ErrUnavailable, err)
	}
	name := fmt.Sprintf("tapwars-round%d-%s.json", ex.Round, now.UTC().Format("20060102-150405"))
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	c.Response().WriteHeader(http.StatusOK)
	enc := json.NewEncoder(c.Response())
	enc.SetIndent("", " ")
	return enc.Encode(ex)
}

type importResponse struct {
	Round     int64 `json:"round"`
	Players   int   `json:"players"`
	Kicked    int   `json:"kicked"`
	TotalTaps int64 `json:"totalTaps"`
	Pending   bool  `json:"pending,omitempty"` // logged, not applied yet
}

// adminImport: POST /admin/import — restores an export: the raw JSON body
// (curl --data-binary @file), or the form's file field. A malformed or
// inconsistent file is refused with 400 and the first problem, and nothing
// changes.
func (s *Server) adminImport(c echo.Context) error {
	ctx := c.Request().Context()
	var (
		data []byte
		err  error
	)
	if strings.HasPrefix(c.Request().Header.Get(echo.HeaderContentType), echo.MIMEMultipartForm) {
		if c.FormValue("confirm") != "yes" && wantsHTML(c) {
			return s.adminFail(c, http.StatusBadRequest, "Tick the box to confirm that the file replaces the whole game state.")
		}
		fh, ferr := c.FormFile("file")
		if ferr != nil {
			var he *echo.HTTPError
			if errors.As(ferr, &he) && he.Code == http.StatusRequestEntityTooLarge {
				return ferr
			}
			return s.adminFail(c, http.StatusBadRequest, "Choose an export file to import (form field \"file\").")
		}
		f, ferr := fh.Open()
		if ferr != nil {
			return s.adminFail(c, http.StatusBadRequest, "The uploaded file cannot be read.")
		}
		data, err = io.ReadAll(io.LimitReader(f, MaxImportBytes+1))
		_ = f.Close()
	} else {
		data, err = io.ReadAll(c.Request().Body)
	}
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return err
		}
		return s.adminFail(c, http.StatusBadRequest, "The import could not be read: "+err.Error())
	}
	if len(data) > MaxImportBytes {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge)
	}
	ex, err := store.ParseExport(data)
	if err != nil {
		var ie *store.ImportError
		if errors.As(err, &ie) {
			return s.adminFail(c, http.StatusBadRequest, err.Error())
		}
		return err
	}
	ends, err := s.kafkaEnds(ctx)
	if err != nil {
		s.log.Warn("admin import: kafka end offsets", "err", err)
		return s.adminFail(c, http.StatusServiceUnavailable, kafkaDownMsg)
	}
	round, err := s.opt.Admin.Import(ctx, ex, stream.Topic, ends, time.Now())
	pending := errors.Is(err, store.ErrNotApplied)
	if pending {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", game.ErrUnavailable, err)
	}
	s.reloadKicks(ctx, true)
	s.log.Info("admin: state imported", "round", round, "players", len(ex.Players), "kicked", len(ex.Kicked), "totalTaps", ex.TotalTaps)
	if wantsHTML(c) {
		return c.Redirect(http.StatusSeeOther, "/admin?done=import")
	}
	res := importResponse{Round: round, Players: len(ex.Players), Kicked: len(ex.Kicked), TotalTaps: ex.TotalTaps, Pending: pending}
	if pending { // logged; the consumer applies it later
		return c.JSON(http.StatusAccepted, res)
	}
	return c.JSON(http.StatusOK, res)
}

// kickID is the player id of a kick request: the path, else the form/query.
func kickID(c echo.Context) (string, error) {
	id := c.Param("id")
	if id == "" {
		id = strings.TrimSpace(c.FormValue("id"))
	}
	if id == "" || len(id) > 64 {
		return "", echo.NewHTTPError(http.StatusBadRequest, "give the player id to kick")
	}
	return id, nil
}

// adminKickConfirm: GET /admin/kick?id= — the browser's confirm step.
func (s *Server) adminKickConfirm(c echo.Context) error {
	id, err := kickID(c)
	if err != nil {
		return s.adminFail(c, http.StatusBadRequest, "Give the id of the player to kick.")
	}
	d, err := s.adminData(c, adminOf(c))
	if err != nil {
		return err
	}
	u, err := s.store.User(c.Request().Context(), id)
	if err != nil {
		if errors.Is(err, game.ErrUnknownPlayer) {
			return s.adminFail(c, http.StatusNotFound, "There is no player with id "+id+" (maybe already kicked).")
		}
		return fmt.Errorf("%w: %w", game.ErrUnavailable, err)
	}
	d.Target = u
	if st, err := s.store.Stats(c.Request().Context(), []string{id}); err == nil {
		d.Taps = st[id].Taps
	}
	return render(c, http.StatusOK, views.AdminKickPage(d))
}

type kickResponse struct {
	Kicked      string `json:"kicked"`
	RemovedTaps int64  `json:"removedTaps,omitempty"`
	Pending     bool   `json:"pending,omitempty"` // logged and in force, not applied yet: removedTaps unknown
}

// adminKick: POST /admin/kick/:id (or form field id) — removes a player:
// the kick is logged, their token stops working on every instance at once,
// and the consumer takes every tap of theirs of this round (also those still
// in Kafka) out of the scores. 200 once applied, 202 while pending.
func (s *Server) adminKick(c echo.Context) error {
	id, err := kickID(c)
	if err != nil {
		return s.adminFail(c, http.StatusBadRequest, "Give the id of the player to kick.")
	}
	removed, err := s.opt.Admin.Kick(c.Request().Context(), id, time.Now())
	pending := errors.Is(err, store.ErrNotApplied)
	if pending {
		err = nil
	}
	switch {
	case errors.Is(err, game.ErrUnknownPlayer):
		return s.adminFail(c, http.StatusNotFound, "There is no player with id "+id+".")
	case errors.Is(err, store.ErrAlreadyKicked):
		return s.adminFail(c, http.StatusConflict, "That player was already kicked.")
	case err != nil:
		return fmt.Errorf("%w: %w", game.ErrUnavailable, err)
	}
	// This instance refuses the token at once; the others when the
	// game:admin message reaches them (and they have no copy of the player
	// to fall back on: the store no longer knows them).
	s.kicks.add(id)
	s.users.m.Delete(id)
	s.log.Info("admin: player kicked", "id", id, "removedTaps", removed)
	if wantsHTML(c) {
		return c.Redirect(http.StatusSeeOther, "/admin?done=kick")
	}
	if pending { // logged and in force; the consumer applies it later
		return c.JSON(http.StatusAccepted, kickResponse{Kicked: id, Pending: true})
	}
	return c.JSON(http.StatusOK, kickResponse{Kicked: id, RemovedTaps: removed})
}
