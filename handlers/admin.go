package handlers

// The operator's page (/admin): live numbers, new rounds, backup and
// restore, kicking players. See admin_auth.go for who may use it.

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/views"
)

// AdminStore is what the admin page needs from the game state (ledger.Game).
type AdminStore interface {
	Overview(ctx context.Context, topic string, now time.Time, window time.Duration) (store.Overview, error)
	StartOpenRound(ctx context.Context, now time.Time) (store.ResetResult, error)
	Kick(ctx context.Context, id string, now time.Time) (int64, error)
	KickedIDs(ctx context.Context) ([]string, error)
	Export(ctx context.Context, now time.Time) (store.Export, error)
	Import(ctx context.Context, ex store.Export, topic string, now time.Time) (int64, error)
	SubscribeAdmin(ctx context.Context) <-chan struct{}
	StartTimedRound(ctx context.Context, sc game.RoundSchedule, now time.Time) (game.RoundSchedule, error)
	SetTeams(ctx context.Context, ts game.Teams, now time.Time) error
	// Admin sessions live in the store, so that logging out ends one on
	// every instance (see adminAuth).
	StartAdminSession(ctx context.Context, id string, expires time.Time) error
	AdminSessionLive(ctx context.Context, id string) (bool, error)
	EndAdminSession(ctx context.Context, id string) error
}

// KafkaInfo reads the end of the tap log (stream.Watermarks).
type KafkaInfo interface {
	// HighWatermarks returns the next offset of every partition of game-taps.
	HighWatermarks(ctx context.Context) (map[int32]int64, error)
}

// MaxImportBytes is the largest import file (the rest of the API keeps
// BodyLimit).
const MaxImportBytes = 64 << 20

// errImportTooLarge refuses an import over MaxImportBytes (Echo's body
// limit does; see domainError).
var errImportTooLarge = &game.Error{Code: game.ETOOLARGE,
	Message: "import file too large (limit " + strconv.Itoa(MaxImportBytes>>20) + " MiB)"}

// rateWindow is the span of the taps-per-second chart.
const rateWindow = 15 * time.Minute

// adminRoutes registers /admin and its actions.
func (s *Server) adminRoutes(e *echo.Echo) {
	e.GET("/admin", s.adminPage, s.withTeams)
	e.POST("/admin/login", s.adminLogin, s.withTeams)
	g := e.Group("/admin", s.requireAdmin, s.withTeams)
	g.POST("/logout", s.adminLogout)
	g.GET("/stats", s.adminStats)
	g.GET("/console", s.adminConsole)
	g.POST("/teams", s.adminTeams)
	g.GET("/reset", s.adminResetConfirm)
	g.POST("/reset", s.adminReset)
	g.POST("/rounds", s.adminStartRounds)
	g.DELETE("/rounds", s.adminStopRounds)
	g.POST("/rounds/stop", s.adminStopRounds) // the admin page's form (HTML forms cannot DELETE)
	g.GET("/export", s.adminExport)
	g.POST("/import", s.adminImport) // body limit: MaxImportBytes (see New)
	g.GET("/kick", s.adminKickConfirm)
	g.POST("/kick", s.adminKick)
	g.POST("/kick/:id", s.adminKick)
}

// wantsHTML tells browser form posts (answered with pages and redirects)
// from API calls (answered with JSON).
func wantsHTML(c echo.Context) bool {
	_, api := bearer(c.Request())
	return !api &&
		strings.Contains(c.Request().Header.Get(echo.HeaderAccept), "text/html")
}

// adminData is everything the dashboard shows.
func (s *Server) adminData(c echo.Context, a adminCtx) (views.AdminData, error) {
	ctx := c.Request().Context()
	st, err := s.adminStatsData(ctx)
	if err != nil {
		return views.AdminData{}, err
	}
	d := views.AdminData{CSRF: a.csrf, Stats: st}
	if cons, top, err := s.adminConsoleData(ctx); err == nil {
		d.Console, d.Top = cons, top
	}
	return d, nil
}

// adminConsoleData reads the round and the room for the console, and the
// top 10.
func (s *Server) adminConsoleData(ctx context.Context) (views.AdminConsole, []game.LeaderboardEntry, error) {
	now := time.Now()
	snap, err := s.store.Snapshot(ctx, 10, now)
	if err != nil {
		return views.AdminConsole{}, nil, err
	}
	return views.AdminConsole{Now: now, Round: snap.Round, Game: snap.GameState, Online: snap.Users}, snap.Leaderboard, nil
}

// adminFail shows a failed action: the dashboard with the message for a
// browser, the JSON error otherwise.
func (s *Server) adminFail(c echo.Context, fail error) error {
	if !wantsHTML(c) {
		return fail
	}
	d, err := s.adminData(c, adminOf(c))
	if err != nil {
		return fail
	}
	d.Error = game.ErrorMessage(fail)
	return renderError(c, fail, views.AdminPage(d))
}

// kafkaEnds reads the high watermarks (the end of the tap log): a reset
// reports them, and a reset or an import that cannot read them changes
// nothing, as Kafka would not take its markers either.
func (s *Server) kafkaEnds(ctx context.Context) (map[int32]int64, error) {
	if s.opt.Kafka == nil {
		return nil, game.Errorf(game.EINTERNAL, "no Kafka client configured")
	}
	kctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ends, err := s.opt.Kafka.HighWatermarks(kctx)
	if err != nil {
		s.log.Warn("admin: kafka end offsets", "err", err)
		return nil, game.Wrap(err, game.EUNAVAILABLE, kafkaDownMsg)
	}
	return ends, nil
}

const kafkaDownMsg = "Kafka did not answer, so the end of the tap log is unknown: nothing was changed; try again when Kafka is back"
