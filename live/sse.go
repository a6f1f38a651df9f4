package live

// Server-Sent Events: GET /events. A page's stream carries its HTML
// fragments as `event: state`, a JSON stream the /api/game-state JSON; the
// hub writes the frames (client.go), with a comment line as heartbeat.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ServeSSE answers w with an event stream of s and serves it after the
// request returned: every client gets the current state at once and then
// each change (at most ~20 per second, latest wins). It returns nil once
// the stream runs or the client went away before it started, else why the
// connection could not be taken over. Either way s.Done is called when
// the connection ends.
func (e *Endpoints) ServeSSE(w http.ResponseWriter, s Stream) error {
	conn, err := openSSE(w, e.base())
	if err != nil {
		s.done()
		if errors.Is(err, errGone) {
			return nil
		}
		return err
	}
	go func() {
		defer s.done()
		defer conn.close()
		err := e.Hub.Serve(conn.ctx, conn, Format{SSE, s.Page}, s.viewer(), e.Options)
		if !IsGone(err) {
			e.Hub.log.Debug("sse client dropped", "err", err)
		}
	}()
	return nil
}

// sseConn is an event stream on a connection taken over from net/http.
// Thousands of these stay open, so each one holds as little as possible:
// no buffers (every frame is already encoded, once for all clients, and
// what is due is written with one write call), and no chunked encoding (the stream ends
// when the connection closes, as `Connection: close` announces).
type sseConn struct {
	nc       net.Conn
	ctx      context.Context // ends when the client hangs up
	cancel   context.CancelFunc
	deadline WriteDeadline
}

// sseReadLimit is what a client may send on an event stream (nothing is
// expected) before it is disconnected.
const sseReadLimit = 4 << 10

// errGone: the client hung up before its stream started.
var errGone = errors.New("client went away")

// SSEHeader sets an event stream's response header: never cached or
// transformed, unbuffered by proxies, the connection closed at its end.
func SSEHeader(h http.Header) {
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Connection", "close")
}

// openSSE answers with the event stream's head, takes the connection over
// and watches it for the client hanging up. The stream's context derives
// from base, not from the request, which ends first.
func openSSE(w http.ResponseWriter, base context.Context) (*sseConn, error) {
	h := w.Header()
	SSEHeader(h)
	nc, _, err := http.NewResponseController(w).Hijack()
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
	s.deadline.Set(s.nc, deadline)
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
