package handlers

import (
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/tapwars/tapwars/static"
)

// compressMinBytes is the smallest answer worth gzip: below about a
// kilobyte (/theme.css, a join's answer) the saving is a few bytes, and
// the answer fits one packet either way.
const compressMinBytes = 1024

// compress gzips pages and API answers of at least compressMinBytes for
// clients that accept it (at the default level: pages are made once per
// visit, and level 1 left them 15–30% bigger).
//
// Skipped: the live streams (an SSE event must leave at once, not wait in
// a compressor's buffer; a WebSocket takes its connection over); the
// static files, which carry their own brotli or gzip made once (package
// static); /metrics, should it be served here, which promhttp compresses
// itself; and the routes whose answers are always small and come often
// (taps, probes): the middleware resets a pooled compressor for every
// request it does not skip, answer compressed or not, which costs more
// than a tap's whole handling (docs/BENCHMARKS.md).
func compress() echo.MiddlewareFunc {
	return middleware.GzipWithConfig(middleware.GzipConfig{
		MinLength: compressMinBytes,
		Skipper: func(c echo.Context) bool {
			switch c.Path() {
			case "/events", "/ws", "/metrics", static.Prefix + "*", "/api/tap", "/healthz", "/readyz":
				return true
			}
			return false
		},
	})
}
