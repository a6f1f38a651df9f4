package handlers

import (
	"context"
	"errors"
	"fmt"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/live"
)

// ws: GET /ws — the same updates as /events over WebSocket: each message is
// HTML fragments that the htmx ws extension swaps by id (?format=json: the
// game-state JSON; ?page=leaderboard: the leaderboard page's fragments).
// Cross-origin upgrades are refused; clients may not send messages.
func (s *Server) ws(c echo.Context) error {
	format := live.WSGame
	switch {
	case c.QueryParam("format") == "json":
		format = live.WSJSON
	case c.QueryParam("page") == "leaderboard":
		format = live.WSBoard
	}
	var user *game.User
	if format != live.WSJSON {
		if u, err := s.player(c); err == nil {
			user = &u
		}
	}
	conn, err := websocket.Accept(c.Response(), c.Request(), &websocket.AcceptOptions{})
	if err != nil {
		return nil // Accept has written the error response
	}
	conn.SetReadLimit(4096)
	ctx := conn.CloseRead(c.Request().Context())
	err = s.hub.Serve(ctx, &wsConn{c: conn}, format, user, live.ServeOptions{WriteTimeout: s.opt.WriteTimeout, Heartbeat: s.opt.Heartbeat})
	switch {
	case errors.Is(err, live.ErrClosing):
		conn.Close(websocket.StatusServiceRestart, "server restarting")
	case live.IsGone(err):
		conn.Close(websocket.StatusNormalClosure, "")
	default:
		s.log.Debug("ws client dropped", "err", err)
		conn.CloseNow()
	}
	return nil
}

type wsConn struct{ c *websocket.Conn }

func (w *wsConn) Write(ctx context.Context, msg []byte) error {
	if err := w.c.Write(ctx, websocket.MessageText, msg); err != nil {
		return fmt.Errorf("ws write: %w", err)
	}
	return nil
}

func (w *wsConn) Heartbeat(ctx context.Context) error {
	if err := w.c.Ping(ctx); err != nil {
		return fmt.Errorf("ws ping: %w", err)
	}
	return nil
}

// Bye closes with 1012 (service restart): the page reconnects by itself.
func (w *wsConn) Bye(ctx context.Context) error {
	return w.c.Close(websocket.StatusServiceRestart, "server restarting")
}
