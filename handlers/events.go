package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
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
	release, err := s.liveSlot(c)
	if err != nil {
		return err
	}
	format := liveFormat(c, live.SSEJSON, live.SSEGame, live.SSEBoard)
	var user *game.User
	if format != live.SSEJSON {
		user, _ = s.livePlayer(c)
	}
	conn, err := openSSE(c, s.opt.Context)
	if err != nil {
		release()
		if errors.Is(err, errGone) {
			return nil
		}
		return err
	}
	// The stream goes on in its own goroutine and this request ends: the
	// HTTP server's goroutine, its buffers and the request are freed, so a
	// stream costs a few KiB.
	go func() {
		defer release()
		defer conn.close()
		err := s.hub.Serve(conn.ctx, conn, format, user, s.serveOptions())
		if !live.IsGone(err) {
			s.log.Debug("sse client dropped", "err", err)
		}
	}()
	return nil
}

// liveFormat is what a live stream (SSE or WebSocket) carries: the
// game-state JSON for ?format=json, the leaderboard page's fragments for
// ?page=leaderboard, else the game page's. The pages also get personal
// fragments for the signed-in player (livePlayer; nil for an anonymous
// viewer).
func liveFormat(c echo.Context, jsonFormat, gameFormat, boardFormat live.Format) live.Format {
	switch {
	case c.QueryParam("format") == "json":
		return jsonFormat
	case c.QueryParam("page") == "leaderboard":
		return boardFormat
	}
	return gameFormat
}

// livePlayer is the signed-in player of a live request (cookie or bearer
// token), or nil and why nobody.
func (s *Server) livePlayer(c echo.Context) (*game.User, error) {
	u, err := s.player(c)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

func (s *Server) serveOptions() live.ServeOptions {
	return live.ServeOptions{WriteTimeout: s.opt.WriteTimeout, Heartbeat: s.opt.Heartbeat}
}

// sseConn is an event stream on a connection taken over from net/http.
// Thousands of these stay open, so each one holds as little as possible:
// no buffers (every frame is already encoded, once for all clients, and
// what is due is written with one write call), and no chunked encoding (the stream ends
// when the connection closes, as `Connection: close` announces).
type sseConn struct {
	nc     net.Conn
	ctx    context.Context // ends when the client hangs up
	cancel context.CancelFunc
}

// sseReadLimit is what a client may send on an event stream (nothing is
// expected) before it is disconnected.
const sseReadLimit = 4 << 10

// errGone: the client hung up before its stream started.
var errGone = errors.New("client went away")

// openSSE answers the request with the event stream's head, takes the
// connection over and watches it for the client hanging up. The stream's
// context derives from base, not from the request, which ends first.
func openSSE(c echo.Context, base context.Context) (*sseConn, error) {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
	h.Set(echo.HeaderCacheControl, "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no")
	h.Set(echo.HeaderConnection, "close")
	nc, _, err := http.NewResponseController(c.Response()).Hijack()
	if err != nil {
		return nil, fmt.Errorf("sse: take over the connection: %w", err)
	}
	ctx, cancel := context.WithCancel(base)
	conn := &sseConn{nc: nc, ctx: ctx, cancel: cancel}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.Write(&head)
	// Reconnect after 1 s when the stream drops.
	head.WriteString("\r\nretry: 1000\n\n")
	if err := conn.Write(time.Now().Add(10*time.Second), head.Bytes()); err != nil {
		conn.close()
		return nil, errGone
	}
	go func() {
		// The client sends nothing; a read ends when it hangs up.
		defer cancel()
		var buf [512]byte
		for n := 0; n < sseReadLimit; {
			m, err := nc.Read(buf[:])
			if err != nil {
				return
			}
			n += m
		}
	}()
	return conn, nil
}

func (s *sseConn) close() {
	s.cancel()
	_ = s.nc.Close()
}

func (s *sseConn) Write(deadline time.Time, msgs ...[]byte) error {
	_ = s.nc.SetWriteDeadline(deadline)
	bufs := net.Buffers(msgs) // one writev for all of them
	if _, err := bufs.WriteTo(s.nc); err != nil {
		return fmt.Errorf("sse write: %w", err)
	}
	return nil
}

func (s *sseConn) Heartbeat(ctx context.Context) error {
	return s.Write(deadlineOf(ctx), []byte(": ping\n\n"))
}

// Bye asks the browser to come back soon; EventSource reconnects by itself.
func (s *sseConn) Bye(ctx context.Context) error {
	return s.Write(deadlineOf(ctx), []byte("event: bye\ndata: server restarting\nretry: 500\n\n"))
}

// deadlineOf is ctx's deadline, or 10 s from now.
func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(10 * time.Second)
}
