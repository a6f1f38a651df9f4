package handlers

// Limits that stop a flood, not a room: a hall full of players often
// reaches the server from ONE address (NAT), so the per-address budgets are
// sized for a large room, and instance-wide caps (joins per second, live
// connections) bound what all strangers together can cost. Taps are limited
// per player, never per address. All are per instance and in memory; each
// refusal names the limit and the setting that raises it, is counted in
// tapwars_limit_refusals_total{limit}, and for rates says when to try
// again (Retry-After).

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/metrics"
	"github.com/tapwars/tapwars/views"
)

// clientKey is the address limits are kept by: the client's IPv4 address,
// or its IPv6 /64 network (one host usually owns a whole /64). Which
// address is the client's is decided by Echo's IPExtractor: the
// connection's peer, or X-Forwarded-For from trusted proxies only.
func clientKey(c echo.Context) string {
	ip := net.ParseIP(c.RealIP())
	if ip == nil {
		return c.RealIP()
	}
	return addressKey(ip)
}

// addressKey is the key of an address: IPv4 itself, IPv6 its /64.
func addressKey(ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// tapBurst is the burst of the per-player tap limiter: at least one full
// burst request (count = game.MaxBurst), at most two seconds' worth above it.
func tapBurst(perSecond float64) int {
	return max(game.MaxBurst, int(math.Ceil(2*perSecond)))
}

// tooMany is a refusal by a limit: 429 with Retry-After (whole seconds, at
// least 1).
func tooMany(wait time.Duration, msg string) *game.Error {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	return &game.Error{Code: game.ETOOMANY, Message: fmt.Sprintf("%s; try again in %d s", msg, secs), RetryAfter: secs}
}

// allowTap applies TAP_RATE_LIMIT to a tap of n taps by player id.
func (s *Server) allowTap(id string, n int) error {
	if s.tapLimit == nil {
		return nil // TAP_RATE_LIMIT=0: not even the clock is read
	}
	ok, wait := s.tapLimit.take(id, n, time.Now())
	if ok {
		return nil
	}
	metrics.LimitRefusals.WithLabelValues("taps_per_player").Inc()
	return tooMany(wait, fmt.Sprintf("too many taps: at most %s per second per player, bursts up to %d (TAP_RATE_LIMIT)",
		strconv.FormatFloat(s.opt.TapRateLimit, 'f', -1, 64), s.tapLimit.burst))
}

// newJoinLimiter is the per-address join budget: JOIN_RATE_LIMIT a minute
// in bursts of the same size, but never more than half of the instance's
// budget (JOINS_PER_SECOND, bursts of 10 s worth) in rate or in burst, so
// that while one address is refused the instance still has joins for
// everyone else.
func newJoinLimiter(perMinute, instancePerSecond int) *keyedLimiter {
	perSecond, burst := float64(perMinute)/60, perMinute
	if perMinute > 0 && instancePerSecond > 0 {
		perSecond = min(perSecond, float64(instancePerSecond)/2)
		burst = max(1, min(burst, 10*instancePerSecond/2))
	}
	return newKeyedLimiter(perSecond, burst)
}

// joinLimit applies JOIN_RATE_LIMIT (per address) and JOINS_PER_SECOND
// (the instance) to requests that would create a new player (a request
// with a valid session only signs the player in again).
func (s *Server) joinLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, err := s.player(c); err == nil {
			return next(c)
		}
		if err := s.allowJoin(clientKey(c), time.Now()); err != nil {
			if c.Path() == "/join" { // the browser's form: show the form again with why
				return renderError(c, err, views.JoinPage(joinBusyMessage(err), c.Request().PostFormValue("username")))
			}
			return err
		}
		return next(c)
	}
}

// allowJoin takes one join from key's budget, then from the instance's:
// an address over its budget is refused before it can use up the
// instance's joins that everyone shares.
func (s *Server) allowJoin(key string, now time.Time) *game.Error {
	if ok, wait := s.joinLimiter.take(key, 1, now); !ok {
		metrics.LimitRefusals.WithLabelValues("joins_per_address").Inc()
		return tooMany(wait, fmt.Sprintf("too many new players from your address: at most %s per minute, %d at once (JOIN_RATE_LIMIT; one address gets at most half of JOINS_PER_SECOND)",
			strconv.FormatFloat(float64(s.joinLimiter.limit)*60, 'f', -1, 64), s.joinLimiter.burst))
	}
	if ok, wait := s.joinTotal.take("", 1, now); !ok {
		metrics.LimitRefusals.WithLabelValues("joins_total").Inc()
		return tooMany(wait, fmt.Sprintf("too many new players joining this server right now: at most %d per second (JOINS_PER_SECOND)", s.opt.JoinsPerSecond))
	}
	return nil
}

// connLimiter counts the live connections (SSE and WebSocket) of this
// instance, per client address and in total.
type connLimiter struct {
	total, perIP int // 0 = no limit

	mu    sync.Mutex
	n     int
	byKey map[string]int
}

func newConnLimiter(total, perIP int) *connLimiter {
	return &connLimiter{total: total, perIP: perIP, byKey: map[string]int{}}
}

// acquire takes a slot for key, or returns the refusal.
func (l *connLimiter) acquire(key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total > 0 && l.n >= l.total {
		metrics.LimitRefusals.WithLabelValues("connections_total").Inc()
		return &game.Error{Code: game.EUNAVAILABLE, RetryAfter: 5,
			Message: fmt.Sprintf("the server is full (%d live connections, MAX_CONNECTIONS); please try again in a moment", l.total)}
	}
	if l.perIP > 0 && l.byKey[key] >= l.perIP {
		metrics.LimitRefusals.WithLabelValues("connections_per_address").Inc()
		return &game.Error{Code: game.ETOOMANY, RetryAfter: 5,
			Message: fmt.Sprintf("too many live connections from your address (limit %d, MAX_CONNECTIONS_PER_IP): close some tabs", l.perIP)}
	}
	l.n++
	l.byKey[key]++
	return nil
}

func (l *connLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.byKey[key]--; l.byKey[key] <= 0 {
		delete(l.byKey, key)
	}
}

// liveSlot applies MAX_CONNECTIONS (503) and MAX_CONNECTIONS_PER_IP (429)
// to a live stream. The stream outlives its request (live.Endpoints), so
// it calls release when it ends (live.Stream.Done).
func (s *Server) liveSlot(c echo.Context) (release func(), err error) {
	key := clientKey(c)
	if err := s.conns.acquire(key); err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { s.conns.release(key) }) }, nil
}
