package main

// -mode ws: every player taps over its own WebSocket, one message
// {"count": n, "seq": s} per tap request, and each counts once the server's
// answer acknowledged its seq (Kafka has it), as a 202 does over HTTP. With
// -format html the sockets are the game page's (/ws: state fragments,
// personal updates, #tap-ack), with json the API's (/ws?format=json: the
// whole state JSON in every frame, {"type":"ack"}).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// wsWindow bounds the tap messages of one socket awaiting their answer at a
// fixed -rate (at the maximal rate, -window does).
const wsWindow = 32

// tapSocket is one player's socket.
type tapSocket struct {
	pi       int // index into tapper.players
	c        *websocket.Conn
	answered chan struct{} // an answer arrived (wakes the sender)

	mu   sync.Mutex
	seq  int64
	sent map[int64]time.Time // seq -> when sent, no answer yet
}

// wsTaps is the state of -mode ws across phases.
type wsTaps struct {
	t       *tapper
	sockets []*tapSocket
	ok      atomic.Int64 // acks during the current phase
	errMu   sync.Mutex
	errs    map[string]int64 // refusals during the current phase, by status
	// stop ends the current phase early (-taps reached).
	stop atomic.Pointer[context.CancelFunc]
	// noop: the sockets are the do-nothing server's; acks are counted for
	// the rate only, never as taps.
	noop bool
}

type wsAnswer struct {
	Type   string `json:"type"`
	Seq    int64  `json:"seq"`
	Count  int    `json:"count"`
	Status int    `json:"status"`
}

// openTapSockets connects one socket per player (64 dials at a time) and
// starts reading each.
func openTapSockets(ctx context.Context, t *tapper, base, format string) (*wsTaps, error) {
	w := &wsTaps{t: t, sockets: make([]*tapSocket, len(t.players)), errs: map[string]int64{}}
	u := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	if format == "json" {
		u += "?format=json"
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	start := time.Now()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for i, p := range t.players {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, res, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc,
				HTTPHeader: http.Header{"Authorization": {"Bearer " + p.Token}}})
			if err != nil {
				if res != nil {
					err = fmt.Errorf("%s: %w", res.Status, err)
				}
				firstErr.CompareAndSwap(nil, err)
				return
			}
			c.SetReadLimit(4 << 20)
			w.sockets[i] = &tapSocket{pi: i, c: c, answered: make(chan struct{}, 1), sent: map[int64]time.Time{}}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		w.close()
		return nil, fmt.Errorf("tap sockets: %w", err)
	}
	for _, s := range w.sockets {
		go w.read(s)
	}
	fmt.Fprintf(os.Stderr, "tapbench: %d tap sockets open in %.1fs\n", len(w.sockets), time.Since(start).Seconds())
	return w, nil
}

func (w *wsTaps) close() {
	for _, s := range w.sockets {
		if s != nil {
			_ = s.c.Close(websocket.StatusNormalClosure, "")
		}
	}
}

// read handles one socket's frames until it closes: answers are recorded,
// state frames and personal updates skipped unread.
func (w *wsTaps) read(s *tapSocket) {
	buf := make([]byte, 256) // answers are under 200 bytes
	for {
		_, r, err := s.c.Reader(context.Background())
		if err != nil {
			return
		}
		n, err := io.ReadFull(r, buf)
		if err == nil { // longer than any answer
			_, _ = io.Copy(io.Discard, r)
			continue
		}
		a, ok := parseAnswer(buf[:n])
		if !ok {
			continue
		}
		s.mu.Lock()
		sentAt, ok := s.sent[a.Seq]
		delete(s.sent, a.Seq)
		s.mu.Unlock()
		if !ok {
			continue
		}
		w.answer(s, a, sentAt)
		select {
		case s.answered <- struct{}{}:
		default:
		}
	}
}

// parseAnswer reads an answer to a tap: {"type":"ack"|"error",...} on a
// JSON socket, the #tap-ack or #tap-error fragment on a page's socket.
func parseAnswer(b []byte) (wsAnswer, bool) {
	var a wsAnswer
	switch {
	case bytes.HasPrefix(b, []byte(`{"type":"ack"`)), bytes.HasPrefix(b, []byte(`{"type":"error"`)):
		return a, json.Unmarshal(b, &a) == nil
	case bytes.HasPrefix(b, []byte(`<span id="tap-ack"`)):
		a.Type = "ack"
	case bytes.HasPrefix(b, []byte(`<p id="tap-error"`)):
		a.Type = "error"
		a.Status = int(attrInt(b, "data-status"))
	default:
		return a, false
	}
	a.Seq = attrInt(b, "data-seq")
	a.Count = int(attrInt(b, "data-count"))
	return a, true
}

// attrInt is the number in attribute name="123" of b, or 0.
func attrInt(b []byte, name string) int64 {
	i := bytes.Index(b, []byte(name+`="`))
	if i < 0 {
		return 0
	}
	b = b[i+len(name)+2:]
	if j := bytes.IndexByte(b, '"'); j >= 0 {
		n, _ := strconv.ParseInt(string(b[:j]), 10, 64)
		return n
	}
	return 0
}

func (w *wsTaps) answer(s *tapSocket, a wsAnswer, sentAt time.Time) {
	t := w.t
	now := time.Now()
	if a.Type != "ack" {
		w.errMu.Lock()
		w.errs[strconv.Itoa(a.Status)]++
		w.errMu.Unlock()
		if a.Status >= 500 {
			t.mayCount()
		}
		return
	}
	w.ok.Add(1)
	if w.noop {
		return
	}
	if stop := w.stop.Load(); t.acknowledged(s.pi, a.Count, now, now.Sub(sentAt)) && stop != nil {
		(*stop)()
	}
}

// outstanding is the number of messages of s awaiting an answer.
func (s *tapSocket) outstanding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

// run is one phase: every socket sends tap messages for d, at rate messages
// per second in total (0: as fast as answers come, with up to maxWindow
// messages of each socket awaiting their answer, as a page that sends its
// batched taps without waiting),
// then the phase waits (at most 10 s) for the answers still due.
func (w *wsTaps) run(ctx context.Context, d time.Duration, rate float64, maxWindow int, target string) phase {
	t := w.t
	msg := func(seq int64) []byte {
		return []byte(`{"count":` + strconv.Itoa(t.count) + `,"seq":` + strconv.FormatInt(seq, 10) + `}`)
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	w.stop.Store(&cancel)
	defer w.stop.Store(nil)
	w.ok.Store(0)
	w.errMu.Lock()
	w.errs = map[string]int64{}
	w.errMu.Unlock()
	var cpu0 map[string]float64
	if t.cpu != nil {
		cpu0 = t.cpu.read()
	}
	var interval time.Duration
	n := len(w.sockets)
	if rate > 0 {
		interval = time.Duration(float64(n) / rate * float64(time.Second))
	}
	start := time.Now()
	var wg sync.WaitGroup
	var sendErrs atomic.Int64
	for i, s := range w.sockets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := start
			if interval > 0 {
				next = start.Add(interval * time.Duration(i) / time.Duration(n))
			}
			for ctx.Err() == nil {
				window := maxWindow
				if interval > 0 {
					window = wsWindow
					if !sleepUntil(ctx, next) {
						return
					}
					next = next.Add(interval)
				}
				for s.outstanding() >= window {
					select {
					case <-ctx.Done():
						return
					case <-s.answered:
					}
				}
				s.mu.Lock()
				s.seq++
				seq := s.seq
				s.sent[seq] = time.Now()
				s.mu.Unlock()
				// Not tied to ctx: coder/websocket closes a socket whose
				// write context ends.
				if err := s.c.Write(context.Background(), websocket.MessageText, msg(seq)); err != nil {
					sendErrs.Add(1)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	ph := phase{Target: target, Seconds: el.Seconds(), Requests: w.ok.Load()}
	if t.cpu != nil {
		ph.CPU, ph.CPUPerReq = t.cpu.since(cpu0, ph.Requests)
	}
	// Answers still due are acknowledged taps too (exactness), not rate.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && w.unanswered() > 0; {
		time.Sleep(5 * time.Millisecond)
	}
	w.errMu.Lock()
	ph.Errors = w.errs
	w.errMu.Unlock()
	if e := sendErrs.Load(); e > 0 {
		ph.Errors["send failed"] = e
	}
	if len(ph.Errors) == 0 {
		ph.Errors = nil
	}
	ph.ReqRate = float64(ph.Requests) / el.Seconds()
	ph.TapRate = ph.ReqRate * float64(t.count)
	return ph
}

// unanswered is the number of messages sent without an answer so far.
func (w *wsTaps) unanswered() int {
	total := 0
	for _, s := range w.sockets {
		total += s.outstanding()
	}
	return total
}

// giveUp counts messages never answered as taps that may still count.
func (w *wsTaps) giveUp() {
	if n := w.unanswered(); n > 0 {
		w.t.mu.Lock()
		w.t.maybe += int64(n * w.t.count)
		w.t.mu.Unlock()
	}
}

// noopSocket is the do-nothing WebSocket: it answers every message with an
// ack of its seq and sends nothing else. It is the least any server of the
// socket contract does per tap: the ceiling of -mode ws.
func noopSocket(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for {
		_, msg, err := c.Read(context.Background())
		if err != nil {
			return
		}
		seq := []byte("0")
		if i := bytes.Index(msg, []byte(`"seq":`)); i >= 0 {
			seq = msg[i+6:]
			if j := bytes.IndexAny(seq, ",}"); j >= 0 {
				seq = seq[:j]
			}
		}
		ack := append(append([]byte(`{"type":"ack","seq":`), seq...), `,"count":1}`...)
		if err := c.Write(context.Background(), websocket.MessageText, ack); err != nil {
			return
		}
	}
}
