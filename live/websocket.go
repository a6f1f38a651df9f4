package live

// WebSocket: GET /ws. The same updates as /events, each message HTML
// fragments that the htmx ws extension swaps by id (or the game-state
// JSON); the client sends its player's taps the other way
// (socket_taps.go).

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// ServeWebSocket upgrades r to a WebSocket that carries s and serves it
// after the request returned: one goroutine writes the hub's frames, one
// reads the client's taps, and the socket ends when either does. A
// cross-origin upgrade is refused (websocket.Accept writes the refusal).
// s.Done is called when the connection ends.
func (e *Endpoints) ServeWebSocket(w http.ResponseWriter, r *http.Request, s Stream) {
	timeout := e.Options.withDefaults().WriteTimeout
	sr := &smallReads{ResponseWriter: w, timeout: timeout}
	conn, err := websocket.Accept(sr, r, &websocket.AcceptOptions{})
	if err != nil {
		s.done()
		return // Accept has written the error response
	}
	wc := &wsConn{c: conn, held: sr.held}
	go func() {
		defer s.done()
		ctx, cancel := context.WithCancel(e.base())
		defer cancel()
		taps := newSocketTaps(e.Taps, wc, s.Page.HTML(), s.User, s.AuthErr, timeout)
		go func() {
			defer cancel()
			if err := taps.run(ctx); !IsGone(err) {
				e.Hub.log.Debug("ws client stopped sending", "err", err)
			}
		}()
		err := e.Hub.Serve(ctx, wc, Format{WS, s.Page}, s.viewer(), e.Options)
		switch {
		case errors.Is(err, ErrClosing):
			_ = wc.close(websocket.StatusServiceRestart, "server restarting")
		case errors.Is(err, ErrKicked): // not a code htmx-ext-ws reconnects on
			_ = wc.close(websocket.StatusPolicyViolation, "removed from the game")
		case IsGone(err):
			_ = wc.close(websocket.StatusNormalClosure, "")
		default:
			e.Hub.log.Debug("ws client dropped", "err", err)
			conn.CloseNow()
		}
	}()
}

// smallReads gives the WebSocket a 512-byte read buffer in place of
// net/http's 4 KiB one: clients of a live socket send small taps and control
// frames, and thousands of sockets stay open.
// The write buffer is 4 KiB, as net/http's: a game-page frame then goes out
// in one write call; below it, writes can be held (heldWrites). It keeps
// the connection, whose write deadline bounds writes.
type smallReads struct {
	http.ResponseWriter
	timeout time.Duration // of each write (heldWrites)
	held    *heldWrites
}

func (s *smallReads) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if brw.Writer.Buffered() > 0 { // the 101, unless net/http sent it already
		if err := brw.Writer.Flush(); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	s.held = &heldWrites{nc: nc, timeout: s.timeout}
	bw := bufio.NewWriterSize(s.held, 4096)
	n := brw.Reader.Buffered()
	if n == 0 {
		return nc, bufio.NewReadWriter(bufio.NewReaderSize(nc, 512), bw), nil
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
	return nc, bufio.NewReadWriter(br, bw), nil
}

// heldWrites is the connection below coder/websocket's write buffer, which
// is flushed at the end of every message: while writes are held, those
// flushes collect here, and release writes them together. So messages due
// together (a frame and a personal update, answers to taps) cost one
// system call, not one each. A failed write fails every later one.
//
// Every write here gets its deadline here, timeout from now: also the ones
// coder/websocket makes by itself (a pong, the reply to a client's close),
// which a deadline set before the server's own last write would fail after
// a quiet spell.
type heldWrites struct {
	nc       net.Conn
	timeout  time.Duration
	deadline WriteDeadline

	mu   sync.Mutex
	held int // holds not yet released
	buf  []byte
	err  error
}

// heldCap is the most a released buffer keeps for the next hold: thousands
// of sockets stay open.
const heldCap = 4096

func (h *heldWrites) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return 0, h.err
	}
	if h.held > 0 {
		h.buf = append(h.buf, p...)
		return len(p), nil
	}
	h.deadline.Set(h.nc, time.Now().Add(h.timeout))
	n, err := h.nc.Write(p)
	h.err = err
	return n, err
}

func (h *heldWrites) hold() {
	h.mu.Lock()
	h.held++
	h.mu.Unlock()
}

// release ends a hold; the last one writes what was held.
func (h *heldWrites) release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held--
	if h.held > 0 || len(h.buf) == 0 || h.err != nil {
		return h.err
	}
	h.deadline.Set(h.nc, time.Now().Add(h.timeout))
	_, h.err = h.nc.Write(h.buf)
	if cap(h.buf) > heldCap {
		h.buf = nil
	} else {
		h.buf = h.buf[:0]
	}
	return h.err
}

// wsConn is a socket as the hub and the tap answers write to it. Its
// writes take their deadline per system call, below (heldWrites), from the
// same WriteTimeout the callers' deadlines come from, rather than a context
// per message (see Conn).
type wsConn struct {
	c    *websocket.Conn
	held *heldWrites
}

// Write sends each of msgs as a text message; several go out in one write.
// The deadline is heldWrites' (the callers ask for WriteTimeout too).
func (w *wsConn) Write(_ time.Time, msgs ...[]byte) (err error) {
	if len(msgs) > 1 {
		w.held.hold()
		defer func() {
			if rerr := w.held.release(); err == nil && rerr != nil {
				err = fmt.Errorf("ws write: %w", rerr)
			}
		}()
	}
	for _, msg := range msgs {
		if err := w.c.Write(context.Background(), websocket.MessageText, msg); err != nil {
			return fmt.Errorf("ws write: %w", err)
		}
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
	return w.close(websocket.StatusServiceRestart, "server restarting")
}

// close runs the closing handshake (coder/websocket waits up to 5 s).
func (w *wsConn) close(code websocket.StatusCode, reason string) error {
	return w.c.Close(code, reason)
}
