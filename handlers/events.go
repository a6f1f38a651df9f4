package handlers

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/live"
)

// events: GET /events — Server-Sent Events. ?format=json streams the
// /api/game-state JSON as `event: state`; otherwise the stream carries the
// page's HTML fragments (?page=leaderboard for the leaderboard page's).
// Every client gets the current state at once and then each change
// (at most ~20 per second, latest wins), with a comment line as heartbeat.
func (s *Server) events(c echo.Context) error {
	format := live.SSEGame
	switch {
	case c.QueryParam("format") == "json":
		format = live.SSEJSON
	case c.QueryParam("page") == "leaderboard":
		format = live.SSEBoard
	}
	var user *game.User
	if format != live.SSEJSON {
		if u, err := s.player(c); err == nil {
			user = &u
		}
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
	h.Set(echo.HeaderCacheControl, "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no")
	h.Set(echo.HeaderConnection, "keep-alive")
	c.Response().WriteHeader(http.StatusOK)
	conn := &sseConn{w: c.Response(), rc: http.NewResponseController(c.Response())}
	// Reconnect after 1 s when the stream drops.
	if err := conn.Write(c.Request().Context(), []byte("retry: 1000\n\n")); err != nil {
		return nil
	}
	err := s.hub.Serve(c.Request().Context(), conn, format, user, live.ServeOptions{WriteTimeout: s.opt.WriteTimeout, Heartbeat: s.opt.Heartbeat})
	if !live.IsGone(err) {
		s.log.Debug("sse client dropped", "err", err)
	}
	return nil
}

type sseConn struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (s *sseConn) Write(ctx context.Context, msg []byte) error {
	if d, ok := ctx.Deadline(); ok {
		_ = s.rc.SetWriteDeadline(d)
	} else {
		_ = s.rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	}
	if _, err := s.w.Write(msg); err != nil {
		return fmt.Errorf("sse write: %w", err)
	}
	if err := s.rc.Flush(); err != nil {
		return fmt.Errorf("sse flush: %w", err)
	}
	return nil
}

func (s *sseConn) Heartbeat(ctx context.Context) error {
	return s.Write(ctx, []byte(": ping\n\n"))
}

// Bye asks the browser to come back soon; EventSource reconnects by itself.
func (s *sseConn) Bye(ctx context.Context) error {
	return s.Write(ctx, []byte("event: bye\ndata: server restarting\nretry: 500\n\n"))
}
