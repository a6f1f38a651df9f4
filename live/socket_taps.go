package live

// Taps over the open WebSocket: the reading side of /ws. A client text
// message {"count": n, "seq": s} is a tap of n (default 1) by the player
// signed in at the upgrade, under the rules of POST /api/tap (TapTaker).
// Each one is answered once Kafka acknowledged it, or refused with the
// status the same tap would get over HTTP: JSON sockets get
// {"type":"ack"|"error", ...}, page sockets the #tap-ack / #tap-error
// fragments. Taps of one socket wait for Kafka side by side, so answers may
// come out of order; seq is echoed as sent.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/a-h/templ"
	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/flatjson"
	"github.com/tapwars/tapwars/internal/httpstatus"
	"github.com/tapwars/tapwars/metrics"
	"github.com/tapwars/tapwars/stream"
	"github.com/tapwars/tapwars/views"
)

// TapTaker takes a tap of n by player u, who signed in when the socket
// opened, under the rules of POST /api/tap: it checks the player again as
// they are now (an import may have left them out or moved them to the
// other team; a kick removes them), then returns once Kafka acknowledged
// the tap, or why it was refused (handlers: signedIn, then acceptTap).
type TapTaker interface {
	Tap(ctx context.Context, u game.User, n int) (game.TapEvent, error)
}

const (
	// wsReadLimit bounds one client message: a tap is ~30 bytes, htmx's
	// ws-send adds its HEADERS object and the form's values.
	wsReadLimit = 4096
	// wsTapsInFlight is how many messages of one socket may be unanswered
	// at once: waiting for Kafka, or answered and waiting to be written.
	// Beyond, the socket is not read until an answer is written, so a
	// client that never reads its answers stops being read itself.
	wsTapsInFlight = 16
	// wsMaxSeq bounds the seq a client may send, which its answer echoes
	// (a page sends a counter): with it, an answer is at most a few
	// hundred bytes, and a socket's unwritten answers a few KiB.
	wsMaxSeq = 64
	// A socket may have wsStrikes refused messages (any refusal: garbage,
	// over the rate limit, outside a round's play, nobody signed in) in a
	// row, and earns one back per second; the next one closes it with 1008.
	wsStrikes     = 10
	wsStrikesRate = 1
)

var (
	// errNotATap refuses a message that is not a tap.
	errNotATap = game.Errorf(game.EINVALID, `a WebSocket message must be a tap: text JSON like {"count": 1, "seq": 1}`)
	// errSeqTooLong refuses a tap whose seq would make its answer large.
	errSeqTooLong = game.Errorf(game.EINVALID, "seq must be at most %d bytes of JSON (a number or a short string)", wsMaxSeq)
)

// tapMessage is a client message; other fields (htmx's HEADERS, form
// values) are ignored. Count may be a number or a string holding one, as
// htmx sends form values.
type tapMessage struct {
	Count json.Number     `json:"count"`
	Seq   json.RawMessage `json:"seq"`
	n     int             // Count read: 1 when absent
}

// readTapMessage reads a client message; Seq is a copy, set also when the
// message is refused if it could be read. The page sends
// {"count":n,"seq":s} with positive integers, read without reflection;
// anything else goes through encoding/json.
func readTapMessage(msg []byte) (tapMessage, error) {
	r := flatjson.NewReader(msg)
	if count, seq := r.Int("count"), r.Int("seq"); r.End() && seq > 0 {
		return tapMessage{Seq: strconv.AppendInt(nil, seq, 10), n: int(count)}, nil
	}
	return decodeTapMessage(msg)
}

// decodeTapMessage is readTapMessage with encoding/json.
func decodeTapMessage(msg []byte) (tapMessage, error) {
	var m tapMessage
	isObject := bytes.HasPrefix(bytes.TrimSpace(msg), []byte("{"))
	if !isObject || json.Unmarshal(msg, &m) != nil {
		return m, errNotATap
	}
	if len(m.Seq) > wsMaxSeq {
		return tapMessage{}, errSeqTooLong
	}
	m.n = 1
	if m.Count != "" {
		c, err := strconv.Atoi(m.Count.String())
		if err != nil {
			return m, game.ErrInvalidCount
		}
		m.n = c
	}
	return m, nil
}

// tapReply answers a tap message on a JSON socket.
type tapReply struct {
	Type       string          `json:"type"` // "ack" or "error"
	Seq        json.RawMessage `json:"seq,omitempty"`
	Count      int             `json:"count,omitempty"`
	Status     int             `json:"status,omitempty"`
	Error      string          `json:"error,omitempty"`
	RetryAfter int             `json:"retryAfter,omitempty"` // seconds, with 429
}

// socketTaps reads the tap messages of one socket and answers them.
type socketTaps struct {
	taps    TapTaker
	conn    *wsConn
	html    bool       // a page's socket: answers are fragments
	user    *game.User // nil: nobody was signed in at the upgrade
	authErr error      // why nobody: the answer to every tap then
	timeout time.Duration
	slots   chan struct{} // one per message read and not yet answered on the wire
	strikes *rate.Limiter

	// Answers waiting to be written (at most one per slot, plus the
	// close); the goroutine that finds none being written writes them
	// all, and those that come meanwhile (see send).
	outMu   sync.Mutex
	out     []answer
	writing bool
	closing atomic.Bool // the socket is being closed for its refusals
}

// answer is a message to write, or the close that ends the socket after
// the answers before it.
type answer struct {
	msg    []byte
	close  websocket.StatusCode // not 0: close with this code and reason
	reason string
	done   func() // after the write (or its failure): frees the message's slot
}

func newSocketTaps(taps TapTaker, conn *wsConn, html bool, user *game.User, authErr error, timeout time.Duration) *socketTaps {
	return &socketTaps{taps: taps, conn: conn, html: html, user: user, authErr: authErr,
		timeout: timeout, slots: make(chan struct{}, wsTapsInFlight),
		strikes: rate.NewLimiter(wsStrikesRate, wsStrikes)}
}

// run reads messages until the socket fails or closes (its error). Pings
// and the closing handshake are answered while reading. Reads do not watch
// ctx (a context per read costs an allocation per tap): whoever ends ctx
// closes the socket, which ends the read.
func (t *socketTaps) run(ctx context.Context) error {
	t.conn.c.SetReadLimit(wsReadLimit)
	var buf bytes.Buffer // one message at a time: handle copies what it keeps
	for {
		typ, r, err := t.conn.c.Reader(context.Background())
		if err != nil {
			return err
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return err
		}
		t.handle(ctx, typ, buf.Bytes())
		if buf.Cap() > 1024 {
			buf = bytes.Buffer{} // a large message once: not kept for every socket
		}
	}
}

// handle answers one message: at once when it is refused before Kafka,
// else from its own goroutine once the TapTaker returns. Either way the
// message holds a slot until its answer is written; a socket being closed
// for its refusals is no longer listened to.
func (t *socketTaps) handle(ctx context.Context, typ websocket.MessageType, msg []byte) {
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	if t.closing.Load() {
		t.release()
		return
	}
	if typ != websocket.MessageText {
		t.refuse(nil, errNotATap)
		return
	}
	m, err := readTapMessage(msg)
	if err != nil {
		t.refuse(m.Seq, err)
		return
	}
	n := m.n
	if t.user == nil {
		t.refuse(m.Seq, t.authErr)
		return
	}
	go func() {
		// A tap the server has read goes on to Kafka (within TAP_TIMEOUT)
		// even when its socket closes meanwhile: the player made it, and a
		// page that closes its socket never sends it again.
		tctx := context.WithoutCancel(ctx)
		if _, err := t.taps.Tap(tctx, *t.user, n); err != nil {
			t.refuse(m.Seq, err)
			t.settle(tctx, m.Seq, n, err)
			return
		}
		t.ack(m.Seq, n)
	}()
}

// release frees a message's slot.
func (t *socketTaps) release() { <-t.slots }

// settle follows a tap answered 504 (it may still count) with its ack or
// its refusal once Kafka's answer is known, echoing the same seq.
func (t *socketTaps) settle(ctx context.Context, seq json.RawMessage, n int, err error) {
	var p interface{ Wait(context.Context) error }
	if game.ErrorCode(err) != game.EPENDING || !errors.As(err, &p) {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, stream.PendingWait)
	defer cancel()
	switch err := p.Wait(wctx); {
	case err == nil:
		metrics.TapsAccepted.Add(float64(n))
		t.ack(seq, n)
	case wctx.Err() == nil:
		t.refuse(seq, err)
	}
}

func (t *socketTaps) ack(seq json.RawMessage, n int) {
	if t.html {
		t.write(views.AppendTapAck(nil, seqText(seq), n))
		return
	}
	// As writeJSON(tapReply{Type: "ack", Seq: seq, Count: n}) would: one
	// per tap message, so without reflection.
	b := make([]byte, 0, 40+len(seq))
	b = append(b, `{"type":"ack",`...)
	if len(seq) > 0 {
		b = append(append(append(b, `"seq":`...), seq...), ',')
	}
	b = append(strconv.AppendInt(append(b, `"count":`...), int64(n), 10), '}')
	t.write(b)
}

// refuse answers a refused tap. Every refusal is a strike, also one the
// client did not mean (409 at a round's bell: a page sends a few at most);
// one too many closes the socket (1008; 1011, which the page reconnects
// after, for an outage). Other sockets never notice.
func (t *socketTaps) refuse(seq json.RawMessage, err error) {
	if len(seq) > wsMaxSeq {
		seq = nil // not echoed: errSeqTooLong, or garbage that set it
	}
	status := httpstatus.Of(err)
	retryAfter := 0
	var ge *game.Error
	if errors.As(err, &ge) {
		retryAfter = ge.RetryAfter
	}
	if t.html {
		t.writeHTML(views.TapError(seqText(seq), status, retryAfter, game.ErrorMessage(err)))
	} else {
		t.writeJSON(tapReply{Type: "error", Seq: seq, Status: status, Error: game.ErrorMessage(err), RetryAfter: retryAfter})
	}
	if !t.strikes.Allow() && t.closing.CompareAndSwap(false, true) {
		code := closeCode(err)
		if code == websocket.StatusNormalClosure {
			code = websocket.StatusPolicyViolation // 409, 404: refused all the same
		}
		t.send(answer{close: code, reason: closeReason(err)})
	}
}

func (t *socketTaps) writeJSON(r tapReply) {
	b, err := json.Marshal(r)
	if err != nil {
		t.release()
		return
	}
	t.write(b)
}

func (t *socketTaps) writeHTML(c templ.Component) {
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.release()
		return
	}
	t.write(buf.Bytes())
}

// write sends the answer to a message and frees its slot once written.
// coder/websocket writes each message whole, one at a time, so answers and
// the hub's frames never interleave; a failed write is the hub's to notice
// (its next write fails too and ends the socket).
func (t *socketTaps) write(b []byte) { t.send(answer{msg: b, done: t.release}) }

// send queues a. The goroutine that finds no answers being written writes
// the queue, in order, until it is empty; the others return at once, so a
// tap's goroutine never waits for a slow socket, and the close for too many
// refusals comes after the refusals queued before it.
func (t *socketTaps) send(a answer) {
	t.outMu.Lock()
	t.out = append(t.out, a)
	if t.writing {
		t.outMu.Unlock()
		return // the writing goroutine takes it
	}
	t.writing = true
	t.outMu.Unlock()
	// Let the goroutines of the other taps Kafka acknowledged in the same
	// batch queue their answers first: they then share this write, one
	// system call on each side instead of one per tap (docs/BENCHMARKS.md).
	runtime.Gosched()
	for {
		t.outMu.Lock()
		batch := t.out
		t.out = nil
		if len(batch) == 0 {
			t.writing = false
			t.outMu.Unlock()
			return
		}
		t.outMu.Unlock()
		t.writeAll(batch)
	}
}

// writeAll writes answers in order: the messages before a close in one
// write call, then the close. Each answer's slot is freed once its write
// returned.
func (t *socketTaps) writeAll(batch []answer) {
	msgs := make([][]byte, 0, len(batch))
	from := 0 // batch[from:] not written yet
	flush := func(upTo int) {
		if len(msgs) > 0 {
			_ = t.conn.Write(time.Now().Add(t.timeout), msgs...)
			msgs = msgs[:0]
		}
		for _, a := range batch[from:upTo] {
			if a.done != nil {
				a.done()
			}
		}
		from = upTo
	}
	for i, a := range batch {
		if a.close == 0 {
			msgs = append(msgs, a.msg)
			continue
		}
		flush(i)
		_ = t.conn.close(a.close, a.reason)
	}
	flush(len(batch))
}

// closeCodeOf is the WebSocket close code of an error code that ends a
// socket: policy violations close with 1008, outages with 1011 (the
// browser's ws extension then reconnects), the rest normally.
var closeCodeOf = map[string]websocket.StatusCode{
	game.EUNAUTHORIZED: websocket.StatusPolicyViolation,
	game.EFORBIDDEN:    websocket.StatusPolicyViolation,
	game.EINVALID:      websocket.StatusPolicyViolation,
	game.ETOOMANY:      websocket.StatusPolicyViolation,
	game.ETOOLARGE:     websocket.StatusMessageTooBig,
	game.EUNAVAILABLE:  websocket.StatusInternalError,
	game.EINTERNAL:     websocket.StatusInternalError,
}

// closeCode is the WebSocket close code of err.
func closeCode(err error) websocket.StatusCode {
	if code, ok := closeCodeOf[game.ErrorCode(err)]; ok {
		return code
	}
	return websocket.StatusNormalClosure
}

// seqText is seq as a page's data-seq attribute: a JSON string unquoted,
// anything else as sent.
func seqText(seq json.RawMessage) string {
	if len(seq) == 0 || seq[0] != '"' {
		return string(seq)
	}
	var s string
	if json.Unmarshal(seq, &s) == nil {
		return s
	}
	return string(seq)
}

// closeReason is err's message cut to what a close frame may carry (123
// bytes), on a UTF-8 boundary.
func closeReason(err error) string {
	msg := game.ErrorMessage(err)
	if len(msg) <= 123 {
		return msg
	}
	msg = msg[:123]
	for len(msg) > 0 && !utf8.ValidString(msg) {
		msg = msg[:len(msg)-1]
	}
	return msg
}
