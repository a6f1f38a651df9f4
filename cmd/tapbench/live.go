package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// liveClient is one SSE or WebSocket stream of ?format=json states. It only
// extracts gameState.totalTaps from each state (a byte search, no JSON
// decoding), so that 10,000 of them cost the generator little.
type liveClient struct {
	kind  string // "sse" or "ws"
	track bool   // keep every (time, total) for freshness

	states   atomic.Int64 // states received
	window   atomic.Int64 // states received while taps were measured
	bytes    atomic.Int64
	last     atomic.Int64 // newest total seen, -1 before any
	firstErr atomic.Value // string

	mu   sync.Mutex
	seen []stateAt
}

type stateAt struct {
	at    int64 // ns since the run's epoch
	total int64
}

// How the total shows in each format: the JSON's "totalTaps":N, or the
// game page fragment's id="total-taps" ...>N<.
var (
	jsonKey = []byte(`"totalTaps":`)
	htmlKey = []byte(`id="total-taps"`)
)

// maxSkip is how far after the key the number may start.
const maxSkip = 96

// scan reads r to its end (nil at EOF) and calls fn with the total of every state it
// finds: the first number after each key. The key or the number can
// straddle two reads.
func scan(r io.Reader, key, buf []byte, onBytes func(int), fn func(int64)) error {
	b := buf[:0]
	for {
		n, err := r.Read(b[len(b):cap(b)])
		if n > 0 {
			onBytes(n)
			b = b[:len(b)+n]
			i := 0
			for {
				j := bytes.Index(b[i:], key)
				if j < 0 {
					i = max(i, len(b)-len(key)+1)
					break
				}
				start := i + j + len(key)
				for start < len(b) && start-(i+j+len(key)) < maxSkip && (b[start] < '0' || b[start] > '9') {
					start++
				}
				k := start
				for k < len(b) && b[k] >= '0' && b[k] <= '9' {
					k++
				}
				if k == len(b) { // the number may go on in the next read
					if i+j == 0 && len(b) == cap(b) {
						i = len(key) // no room to wait for it: skip this state
						continue
					}
					i += j
					break
				}
				if k > start {
					if v, perr := strconv.ParseInt(string(b[start:k]), 10, 64); perr == nil {
						fn(v)
					}
				}
				i = k
			}
			b = b[:copy(b, b[i:])]
		}
		if err == io.EOF {
			return nil // the stream ended
		}
		if err != nil {
			return err
		}
	}
}

func (c *liveClient) got(epoch time.Time, measuring *atomic.Bool) func(int64) {
	return func(total int64) {
		c.states.Add(1)
		if measuring.Load() {
			c.window.Add(1)
		}
		c.last.Store(total)
		if c.track {
			at := time.Since(epoch).Nanoseconds()
			c.mu.Lock()
			c.seen = append(c.seen, stateAt{at, total})
			c.mu.Unlock()
		}
	}
}

func (c *liveClient) fail(err error) {
	c.firstErr.CompareAndSwap(nil, err.Error())
}

// formatKey returns the key to scan for and the query of a format: "json"
// (the game-state JSON) or "html" (the game page's fragments, as browsers
// get them).
func formatKey(format string) ([]byte, string) {
	if format == "html" {
		return htmlKey, ""
	}
	return jsonKey, "?format=json"
}

// runSSE follows GET /events (?format=json) until ctx ends.
func (c *liveClient) runSSE(ctx context.Context, hc *http.Client, base, format string, epoch time.Time, measuring *atomic.Bool, connected func(error)) {
	key, q := formatKey(format)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events"+q, nil)
	res, err := hc.Do(req)
	if err == nil && res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 300))
		res.Body.Close()
		err = fmt.Errorf("sse: %s %s", res.Status, strings.TrimSpace(string(b)))
	}
	connected(err)
	if err != nil {
		c.fail(err)
		return
	}
	defer res.Body.Close()
	buf := make([]byte, 0, 16<<10)
	err = scan(res.Body, key, buf, func(n int) { c.bytes.Add(int64(n)) }, c.got(epoch, measuring))
	if err != nil && ctx.Err() == nil {
		c.fail(err)
	}
}

// runWS follows GET /ws (?format=json) until ctx ends.
func (c *liveClient) runWS(ctx context.Context, hc *http.Client, base, format string, epoch time.Time, measuring *atomic.Bool, connected func(error)) {
	key, q := formatKey(format)
	u := "ws" + strings.TrimPrefix(base, "http") + "/ws" + q
	conn, res, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc})
	if err != nil && res != nil {
		err = fmt.Errorf("ws: %s: %w", res.Status, err)
	}
	connected(err)
	if err != nil {
		c.fail(err)
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(4 << 20)
	buf := make([]byte, 0, 16<<10)
	onBytes := func(n int) { c.bytes.Add(int64(n)) }
	got := c.got(epoch, measuring)
	for {
		_, r, err := conn.Reader(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.fail(err)
			}
			return
		}
		if err := scan(r, key, buf, onBytes, got); err != nil {
			if ctx.Err() == nil {
				c.fail(err)
			}
			return
		}
	}
}

// freshness adds to h, for every acknowledgement in acks (cumulative taps
// of this run at ack time, ascending), the time from the ack until this
// client first saw a totalTaps >= base + that count; 0 when it saw it
// before the ack arrived (taps in flight were counted first). It returns
// how many acks this client never saw reflected.
func (c *liveClient) freshness(acks []ack, base int64, h *hist) (unseen int) {
	c.mu.Lock()
	seen := c.seen
	c.mu.Unlock()
	j := 0
	for _, a := range acks {
		for j < len(seen) && seen[j].total-base < a.cum {
			j++
		}
		if j == len(seen) {
			unseen++
			continue
		}
		h.add(time.Duration(seen[j].at - a.at))
	}
	return unseen
}
