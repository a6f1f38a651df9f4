// Package handlers is tapwars' HTTP surface: the JSON API, the pages, the
// admin console and health (metrics have their own listener: app.Main
// serves METRICS_ADDR), with sign-in, the limits and the tap rules
// (acceptTap: POST /api/tap and taps over a WebSocket alike). The live
// endpoints /events and /ws are routed here (live.go decides who connects
// and what they see) and served by package live. Handlers are small;
// domain errors become HTTP statuses in one place (errorHandler, with
// internal/httpstatus).
package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapwars/tapwars/auth"
	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/live"
	"github.com/tapwars/tapwars/metrics"
	"github.com/tapwars/tapwars/static"
)

// Store is the game state the handlers read and write (ledger.Game: its
// changes are logged first, its reads come from the store).
type Store interface {
	Join(ctx context.Context, name string, now time.Time) (game.User, error)
	User(ctx context.Context, id string) (game.User, error)
	Snapshot(ctx context.Context, top int, now time.Time) (game.Snapshot, error)
	Stats(ctx context.Context, ids []string) (map[string]game.PlayerStats, error)
	Teams(ctx context.Context) (game.Teams, error)
	Ping(ctx context.Context) error
}

// Tapper sends a tap event and returns once Kafka acknowledged it (stream.Producer).
type Tapper interface {
	Send(ctx context.Context, ev game.TapEvent) error
}

// Checker reports whether a dependency is reachable, for /readyz.
type Checker func(ctx context.Context) error

// DefaultTapTimeout is how long a tap waits for Kafka unless TAP_TIMEOUT
// says otherwise.
const DefaultTapTimeout = 3 * time.Second

// Options configure the handlers; zero values take the defaults.
type Options struct {
	TapTimeout  time.Duration      // how long a tap waits for Kafka before 503 (default DefaultTapTimeout)
	BodyLimit   string             // largest request body (default "16K")
	BodyTimeout time.Duration      // how long an API request's body may take to arrive (default 10 s)
	PublicURL   string             // the address players use (the presenter screen's QR code); "" = from the request
	Ready       map[string]Checker // dependencies checked by /readyz, by name
	// Details are shown at /readyz by name (e.g. the newest checkpoint's
	// age) and never make it fail.
	Details      map[string]func(context.Context) string
	WriteTimeout time.Duration // live streams: a write stuck this long drops the client (default 10 s)
	Heartbeat    time.Duration // live streams: idle heartbeat interval (default 15 s)

	// Limits (see limits.go); 0 disables each.
	TapRateLimit        float64 // taps per second per player (burst: max(50, 2 s worth)); 429 beyond
	JoinRateLimit       int     // new players per client address per minute; 429 beyond
	JoinsPerSecond      int     // new players per second on this instance (burst: 10 s worth); 429 beyond
	MaxConnections      int     // live connections (SSE + WebSocket) of this instance; 503 beyond
	MaxConnectionsPerIP int     // live connections per client address; 429 beyond
	// Proxies are the reverse proxies whose forwarding headers are believed
	// (default none: the connection's peer is the client).
	Proxies Proxies

	// Admin page (see admin.go): served when AdminToken and Admin are set.
	AdminToken string
	Admin      AdminStore
	Kafka      KafkaInfo
	// RoundView is the view of the current round taps are judged by (nil:
	// the live hub's last frame, for tests of the handlers alone).
	RoundView RoundView
	// ConsumerLag is this instance's consumer's lag per partition it owns
	// (stream.Consumer.Lag).
	ConsumerLag func() map[int32]int64
	// Context ends background work (the kicked-players watcher) and the
	// live streams, which outlive their requests.
	Context context.Context
}

// Server holds what the handlers need.
type Server struct {
	store  Store
	tapper Tapper
	hub    *live.Hub
	live   *live.Endpoints // serves /events and /ws (live.go)
	signer *auth.Signer
	log    *slog.Logger
	opt    Options
	users  *userCache

	admin       *adminAuth    // nil without an admin page
	kicks       kickSet       // kicked player ids (admin_kick.go)
	tapLimit    *keyedLimiter // nil: no tap limit
	joinLimiter *keyedLimiter // per address; nil: no limit
	joinTotal   *keyedLimiter // the instance (one key); nil: no limit
	conns       *connLimiter
}

// New builds the Echo app with every route.
func New(st Store, tapper Tapper, hub *live.Hub, signer *auth.Signer, log *slog.Logger, opt Options) *echo.Echo {
	if opt.TapTimeout <= 0 {
		opt.TapTimeout = DefaultTapTimeout
	}
	if opt.BodyTimeout <= 0 {
		opt.BodyTimeout = 10 * time.Second
	}
	if opt.BodyLimit == "" {
		opt.BodyLimit = "16K"
	}
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = 10 * time.Second // as live.ServeOptions
	}
	if opt.Context == nil {
		opt.Context = context.Background()
	}
	s := &Server{store: st, tapper: tapper, hub: hub, signer: signer, log: log, opt: opt, users: newUserCache(st, userCacheSize)}
	if opt.RoundView != nil {
		opt.RoundView.OnKicks(func(ctx context.Context) error { return s.reloadKicks(ctx, false) })
	}
	s.tapLimit = newKeyedLimiter(opt.TapRateLimit, tapBurst(opt.TapRateLimit))
	s.joinLimiter = newJoinLimiter(opt.JoinRateLimit, opt.JoinsPerSecond)
	s.joinTotal = newKeyedLimiter(float64(opt.JoinsPerSecond), 10*opt.JoinsPerSecond)
	s.conns = newConnLimiter(opt.MaxConnections, opt.MaxConnectionsPerIP)
	s.live = &live.Endpoints{Hub: hub, Context: opt.Context, Taps: socketTapper{s},
		Options: live.ServeOptions{WriteTimeout: opt.WriteTimeout, Heartbeat: opt.Heartbeat}}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.JSONSerializer = jsonSerializer{}
	e.IPExtractor = opt.Proxies.IPExtractor()
	e.Pre(opt.Proxies.dropUntrustedForwarding)
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{}))
	e.Use(s.observe)
	e.Use(middleware.Recover())
	e.Use(securityHeaders())
	e.Use(crossOriginGuard())
	e.Use(compress())
	isImport := func(c echo.Context) bool { return c.Path() == "/admin/import" }
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: opt.BodyLimit, Skipper: isImport}))
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: strconv.Itoa(MaxImportBytes), // bytes
		Skipper: func(c echo.Context) bool { return !isImport(c) }}))

	e.GET("/", s.index, s.withTeams)
	e.POST("/join", s.joinForm, s.joinLimit, s.withTeams)
	e.GET("/leaderboard", s.leaderboardPage, s.withTeams)
	e.GET("/screen", s.screen, s.withTeams)
	e.GET("/theme.css", s.themeCSS)
	e.POST("/api/join", s.join, s.joinLimit)
	e.POST("/api/tap", s.tap)
	e.GET("/api/game-state", s.gameState)
	e.GET("/api/rounds", s.apiRounds)
	e.GET("/rounds", s.roundsHistoryPage, s.withTeams)
	e.GET("/events", s.events)
	e.GET("/ws", s.ws)
	if opt.AdminToken != "" && opt.Admin != nil {
		s.admin = newAdminAuth(opt.AdminToken)
		s.adminRoutes(e)
		go s.watchKicks(opt.Context)
	}
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", s.ready)
	e.GET("/static/*", echo.WrapHandler(static.Handler()))
	e.GET("/favicon.ico", func(c echo.Context) error { // for clients that ask without reading the page
		return c.Redirect(http.StatusFound, static.URL("favicon.svg"))
	})
	return e
}

// observe logs each request with its id and counts it by route and status.
// Tokens and cookies are never logged.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		countRequest(route, status)
		level := slog.LevelDebug
		if status >= 500 && status != http.StatusServiceUnavailable {
			level = slog.LevelWarn
		}
		if !s.log.Enabled(c.Request().Context(), level) {
			return nil // its fields cost allocations even when dropped
		}
		s.log.Log(c.Request().Context(), level, "http",
			"id", c.Response().Header().Get(echo.HeaderXRequestID),
			"method", c.Request().Method, "route", route, "status", status,
			"dur", time.Since(start))
		return nil
	}
}

// requestCounters holds the children of tapwars_http_requests_total by
// routeStatus: WithLabelValues hashes and compares both labels under the
// vector's lock on every request. Routes and statuses are few.
var requestCounters sync.Map

type routeStatus struct {
	route  string
	status int
}

// countRequest counts a request to route (Echo's path pattern) answered status.
func countRequest(route string, status int) {
	k := routeStatus{route, status}
	if c, ok := requestCounters.Load(k); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c := metrics.HTTPRequests.WithLabelValues(route, strconv.Itoa(status))
	requestCounters.Store(k, c)
	c.Inc()
}

// ready answers 200 when every dependency answers, else 503 with a short
// reason per dependency that does not (the full error goes to the log).
func (s *Server) ready(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	status := map[string]string{}
	code := http.StatusOK
	for name, check := range s.opt.Ready {
		if err := check(ctx); err != nil {
			status[name] = readyReason(err)
			code = http.StatusServiceUnavailable
			s.log.Debug("not ready", "dependency", name, "err", err)
		} else {
			status[name] = "ok"
		}
	}
	for name, detail := range s.opt.Details {
		if d := detail(ctx); d != "" {
			status[name] = d
		}
	}
	return c.JSON(code, status)
}

// reasoner is an error that can say its cause in a few words, without
// addresses or secrets (a dependency's package that knows its failures).
type reasoner interface{ Reason() string }

// readyReason says in a few words why a dependency is not ready, without
// addresses, keys or secrets that a raw error may hold.
func readyReason(err error) string {
	var ne net.Error
	var oe *net.OpError
	var ge *game.Error
	var r reasoner
	switch {
	case errors.As(err, &r):
		return r.Reason()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "did not answer within 2 s"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &oe):
		return "network error (" + oe.Op + ")"
	case errors.As(err, &ge) && ge.Code != game.EINTERNAL && ge.Err == nil:
		return ge.Message // a reason the dependency's package wrote for people
	}
	return "unavailable (see the log)"
}
