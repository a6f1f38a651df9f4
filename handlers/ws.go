package handlers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/live"
)

// ws: GET /ws — the same updates as /events over WebSocket: each message is
// HTML fragments that the htmx ws extension swaps by id (?format=json: the
// game-state JSON; ?page=leaderboard: the leaderboard page's fragments).
// Clients send their player's taps over it (ws_taps.go). Cross-origin
// upgrades are refused.
func (s *Server) ws(c echo.Context) error {
	release, err := s.liveSlot(c)
	if err != nil {
		return err
	}
	format, user := s.liveRequest(c, live.WSJSON, live.WSGame, live.WSBoard)
	tapper, authErr := s.socketPlayer(c, user)
	sr := &smallReads{ResponseWriter: c.Response()}
	conn, err := websocket.Accept(sr, c.Request(), &websocket.AcceptOptions{})
	if err != nil {
		release()
		return nil // Accept has written the error response
	}
	// As with SSE, the socket lives on in its own goroutines and the
	// request ends, freeing what the HTTP server held for it: one writes
	// the hub's frames, one reads the client's taps; the socket ends when
	// either does.
	go func() {
		defer release()
		ctx, cancel := context.WithCancel(s.opt.Context)
		defer cancel()
		wc := &wsConn{c: conn, nc: sr.nc}
		taps := newSocketTaps(s, wc, format != live.WSJSON, tapper, authErr)
		go func() {
			defer cancel()
			if err := taps.run(ctx); !live.IsGone(err) {
				s.log.Debug("ws client stopped sending", "err", err)
			}
		}()
		err := s.hub.Serve(ctx, wc, format, user, s.serveOptions())
		switch {
		case errors.Is(err, live.ErrClosing):
			_ = wc.close(websocket.StatusServiceRestart, "server restarting")
		case live.IsGone(err):
			_ = wc.close(websocket.StatusNormalClosure, "")
		default:
			s.log.Debug("ws client dropped", "err", err)
			conn.CloseNow()
		}
	}()
	return nil
}

// socketPlayer is the player whose taps a socket carries: the page's
// viewer, or for ?format=json the one the request authenticates (cookie or
// bearer token). Without one, the error a tap then gets.
func (s *Server) socketPlayer(c echo.Context, viewer *game.User) (*game.User, error) {
	if viewer != nil {
		return viewer, nil
	}
	u, err := s.player(c)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// smallReads gives the WebSocket a 512-byte read buffer in place of
// net/http's 4 KiB one: clients of a live socket send small taps and control
// frames, and thousands of sockets stay open.
// The 4 KiB write buffer stays: a game-page frame then goes out in one
// write call. It keeps the connection, whose write deadline bounds writes.
type smallReads struct {
	http.ResponseWriter
	nc net.Conn
}

func (s *smallReads) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	s.nc = nc
	n := brw.Reader.Buffered()
	if n == 0 {
		return nc, bufio.NewReadWriter(bufio.NewReaderSize(nc, 512), brw.Writer), nil
	}
	// The client's first frames can arrive before the hijack (net/http
	// sends the 101 at WriteHeader). They must sit in the new reader's
	// buffer: websocket.Accept keeps what is buffered and resets the reader
	// to read the connection.
	b, _ := brw.Reader.Peek(n)
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(b)), nc), max(512, n))
	if _, err := br.Peek(n); err != nil {
		return nil, nil, err
	}
	return nc, bufio.NewReadWriter(br, brw.Writer), nil
}

// wsConn writes with the connection's write deadline rather than a context
// per message (see live.Conn); every write sets it first.
type wsConn struct {
	c  *websocket.Conn
	nc net.Conn
}

func (w *wsConn) Write(deadline time.Time, msg []byte) error {
	_ = w.nc.SetWriteDeadline(deadline)
	if err := w.c.Write(context.Background(), websocket.MessageText, msg); err != nil {
		return fmt.Errorf("ws write: %w", err)
	}
	return nil
}

func (w *wsConn) Heartbeat(ctx context.Context) error {
	_ = w.nc.SetWriteDeadline(deadlineOf(ctx))
	if err := w.c.Ping(ctx); err != nil {
		return fmt.Errorf("ws ping: %w", err)
	}
	return nil
}

// Bye closes with 1012 (service restart): the page reconnects by itself.
func (w *wsConn) Bye(ctx context.Context) error {
	return w.close(websocket.StatusServiceRestart, "server restarting")
}

// close runs the closing handshake (coder/websocket waits up to 5 s).
func (w *wsConn) close(code websocket.StatusCode, reason string) error {
	_ = w.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return w.c.Close(code, reason)
}
