package handlers

// Admin authentication: ADMIN_TOKEN as a bearer token (curl) or, in the
// browser, a login form that sets a signed admin session cookie (HttpOnly,
// SameSite=Strict, Path=/admin, Secure behind TLS). A session counts only
// while the store holds its id: logout deletes it, for every instance.
// Every admin POST made with the cookie must carry a CSRF token bound to
// the session (hidden form field _csrf or header X-CSRF-Token); bearer
// requests need none, since a browser never adds a Bearer header by itself
// (Basic credentials it does add are ignored: see bearer).

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/metrics"
)

const (
	adminCookieName = "tapwars_admin"
	adminSessionTTL = 12 * time.Hour
	csrfField       = "_csrf"
	csrfHeader      = "X-CSRF-Token"
	adminPath       = "/admin"
	sessionPrefix   = "a1."
	maxAdminToken   = 1024
	// MinAdminToken is the shortest ADMIN_TOKEN accepted: 32 characters,
	// as `openssl rand -hex 16` (128 bits) prints.
	MinAdminToken = 32
)

// adminAuth checks the admin token and signs admin sessions and CSRF
// tokens with a key derived from the token: changing ADMIN_TOKEN signs
// every admin out.
type adminAuth struct {
	sum      [32]byte      // SHA-256 of the token: compared in constant time
	key      []byte        // HMAC key of sessions and CSRF tokens
	failures *keyedLimiter // failed admin logins per client address
}

func newAdminAuth(token string) *adminAuth {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("tapwars admin session v1"))
	return &adminAuth{sum: sha256.Sum256([]byte(token)), key: m.Sum(nil), failures: newKeyedLimiter(10.0/60, 10)}
}

// tokenOK compares t with the admin token in constant time (both are hashed
// first, so neither content nor length leaks through timing).
func (a *adminAuth) tokenOK(t string) bool {
	if t == "" || len(t) > maxAdminToken {
		return false
	}
	sum := sha256.Sum256([]byte(t))
	return subtle.ConstantTimeCompare(sum[:], a.sum[:]) == 1
}

func (a *adminAuth) mac(parts ...string) string {
	m := hmac.New(sha256.New, a.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newSession returns a session value "a1.<expiry>.<nonce>.<signature>".
func (a *adminAuth) newSession(now time.Time) string {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	body := sessionPrefix + strconv.FormatInt(now.Add(adminSessionTTL).Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString(nonce[:])
	return body + "." + a.mac("session", body)
}

// sessionID is the id (the nonce) of a session value that passed sessionOK.
func sessionID(v string) string {
	body := v[:strings.LastIndexByte(v, '.')]
	_, id, _ := strings.Cut(strings.TrimPrefix(body, sessionPrefix), ".")
	return id
}

// sessionOK checks a session value's signature and expiry.
func (a *adminAuth) sessionOK(v string, now time.Time) bool {
	if len(v) > 200 || !strings.HasPrefix(v, sessionPrefix) {
		return false
	}
	dot := strings.LastIndexByte(v, '.')
	body, sig := v[:dot], v[dot+1:]
	if !hmac.Equal([]byte(sig), []byte(a.mac("session", body))) {
		return false
	}
	exp, _, _ := strings.Cut(strings.TrimPrefix(body, sessionPrefix), ".")
	n, err := strconv.ParseInt(exp, 10, 64)
	return err == nil && now.Unix() < n
}

// csrf is the CSRF token of a session: only someone who can read the page
// (same origin) learns it, and it dies with the session.
func (a *adminAuth) csrf(session string) string { return a.mac("csrf", session) }

// adminCtx is what an authorised admin request knows.
type adminCtx struct {
	bearer bool   // authorised by the Authorization header
	csrf   string // the CSRF token for forms (cookie sessions only)
}

const adminCtxKey = "tapwars.admin"

func adminOf(c echo.Context) adminCtx {
	a, _ := c.Get(adminCtxKey).(adminCtx)
	return a
}

var (
	errAdminAuth = game.Errorf(game.EUNAUTHORIZED,
		"admin only: send Authorization: Bearer <ADMIN_TOKEN>, or log in at /admin")
	errCSRF = game.Errorf(game.EFORBIDDEN,
		"missing or invalid CSRF token: reload the admin page and try again")
	// errWrongAdminToken is the login form's answer to a wrong token.
	errWrongAdminToken = game.Errorf(game.EUNAUTHORIZED, "That is not the admin token.")
)

// adminHeaders are set on every admin response (the security headers of
// every response are set by securityHeaders).
func adminHeaders(c echo.Context) {
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
}

// authorize checks the admin credentials of a request, and for unsafe
// methods with a cookie session the CSRF token. It returns errAdminAuth when
// the request carries no valid credentials.
func (s *Server) authorize(c echo.Context) (adminCtx, error) {
	if t, ok := bearer(c.Request()); ok {
		if s.admin.tokenOK(t) {
			return adminCtx{bearer: true}, nil
		}
		return adminCtx{}, s.adminFailure(c)
	}
	ck, err := c.Cookie(adminCookieName)
	if err != nil || !s.admin.sessionOK(ck.Value, time.Now()) {
		return adminCtx{}, errAdminAuth
	}
	// Signed and unexpired, but maybe logged out on another instance.
	if live, err := s.opt.Admin.AdminSessionLive(c.Request().Context(), sessionID(ck.Value)); err != nil {
		return adminCtx{}, err
	} else if !live {
		return adminCtx{}, errAdminAuth
	}
	a := adminCtx{csrf: s.admin.csrf(ck.Value)}
	switch c.Request().Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return a, nil
	}
	// Cross-origin requests never get here (crossOriginGuard).
	got := c.Request().Header.Get(csrfHeader)
	if got == "" {
		got = c.Request().PostFormValue(csrfField) // the body only, never the URL
	}
	if !hmac.Equal([]byte(got), []byte(a.csrf)) {
		return adminCtx{}, errCSRF
	}
	return a, nil
}

// adminFailure counts a wrong admin token from the client's address and
// answers 401, or 429 once the address tried too often (10 per minute).
// The right token is never refused, nor is a signed-in session: players
// share the operator's address at a venue, and a stranger's wrong guesses
// must not lock the operator out. Guessing is pointless anyway: a token has
// at least MinAdminToken characters (a generated one 256 random bits).
func (s *Server) adminFailure(c echo.Context) error {
	if ok, wait := s.admin.failures.take(clientKey(c), 1, time.Now()); !ok {
		metrics.LimitRefusals.WithLabelValues("admin_logins").Inc()
		return tooMany(wait, "too many wrong admin tokens from your address")
	}
	return errAdminAuth
}

// requireAdmin guards the admin routes.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		adminHeaders(c)
		a, err := s.authorize(c)
		if err != nil {
			return err
		}
		c.Set(adminCtxKey, a)
		return next(c)
	}
}

func (s *Server) setAdminCookie(c echo.Context, value string, maxAge int) {
	c.SetCookie(&http.Cookie{
		Name:     adminCookieName,
		Value:    value,
		Path:     adminPath,
		MaxAge:   maxAge,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure:   c.Scheme() == "https",
	})
}
