package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/tapwars/tapwars/game"
)

// contentSecurityPolicy allows only the game's own scripts, styles and
// connections (htmx, its extensions and app.js are served from /static):
// no inline script or style, no framing, no foreign form targets.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// securityHeaders are sent on every response. HSTS goes only over TLS
// (directly, or from a trusted proxy's X-Forwarded-Proto: see Proxies).
func securityHeaders() echo.MiddlewareFunc {
	return middleware.SecureWithConfig(middleware.SecureConfig{
		ContentTypeNosniff:    "nosniff",
		XFrameOptions:         "DENY",
		HSTSMaxAge:            365 * 24 * 3600,
		ContentSecurityPolicy: contentSecurityPolicy,
		ReferrerPolicy:        "same-origin",
	})
}

// errCrossOrigin refuses a state-changing request that a page of another
// origin made with the player's (or operator's) cookie.
var errCrossOrigin = game.Errorf(game.EFORBIDDEN,
	"cross-origin request refused: use the game's own page, or an API client with Authorization: Bearer <token>")

// crossOriginGuard refuses cross-origin unsafe requests that rely on
// cookies (Go's CrossOriginProtection: Sec-Fetch-Site, else Origin against
// Host). A request with a Bearer Authorization header is not affected: a
// browser adds one only when a script of the page's own origin does (cross-
// origin it needs a CORS preflight, which is never granted). Basic
// credentials are no such sign: browsers resend them by themselves.
func crossOriginGuard() echo.MiddlewareFunc {
	p := http.NewCrossOriginProtection()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if _, ok := bearer(r); !ok {
				if err := p.Check(r); err != nil {
					return errCrossOrigin
				}
			}
			return next(c)
		}
	}
}
