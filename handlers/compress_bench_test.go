package handlers

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// What compress costs one answer to a client that accepts gzip: a tap's
// 202 on its own route (skipped), the same answer on a route it compresses
// (under compressMinBytes: sent as it is, but the compressor is reset
// anyway), and a 10 KB answer like /api/game-state with 100 players.
func BenchmarkCompress(b *testing.B) {
	small := []byte(`{"accepted":1,"team":"blue","count":1}` + strings.Repeat(" ", 180))
	big := []byte(strings.Repeat(`{"id":"4b3cd42219bd36a150d40b456ea73fb1p5","username":"player_9","team":"red","tapCount":50},`, 110))
	for _, bc := range []struct {
		name, route string
		compress    bool
		body        []byte
	}{
		{"none/small", "/api/tap", false, small},
		{"skipped/small", "/api/tap", true, small},
		{"compressed-route/small", "/api/game-state", true, small},
		{"none/10KB", "/api/game-state", false, big},
		{"compressed-route/10KB", "/api/game-state", true, big},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := echo.New()
			if bc.compress {
				e.Use(compress())
			}
			e.POST(bc.route, func(c echo.Context) error { return c.Blob(http.StatusAccepted, echo.MIMEApplicationJSON, bc.body) })
			req := httptest.NewRequest("POST", bc.route, nil)
			req.Header.Set("Accept-Encoding", "gzip, deflate, br")
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				e.ServeHTTP(w, req)
				if w.Code != http.StatusAccepted {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
