package live_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/live"
)

// recTaker is the handlers' side of socket taps (live.TapTaker): it
// records each tap and refuses a count of 13 as a round outside its play
// would (409).
type recTaker struct {
	mu   sync.Mutex
	taps []string // "player:n"
}

func (r *recTaker) Tap(_ context.Context, u game.User, n int) (game.TapEvent, error) {
	if n == 13 {
		return game.TapEvent{}, game.Errorf(game.ECONFLICT, "the round is over")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.taps = append(r.taps, fmt.Sprintf("%s:%d", u.ID, n))
	return game.TapEvent{UserID: u.ID, Username: u.Username, Team: u.Team}, nil
}

// The endpoints over real HTTP with the hub on redis-server, as the
// handlers use them: the event stream's head and first state; a socket's
// taps reach the TapTaker as its player's and are answered with their seq,
// a refusal with the status POST /api/tap would give; a socket without a
// player is answered 401 and, after ten refusals in a row, closed with
// 1008; Done is called once for every connection when it ends.
func TestEndpointsServeSSEAndWebSocket(t *testing.T) {
	e := startHub(t, live.Options{})
	ann := e.join("ann")
	e.change(5)
	taker := &recTaker{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ep := &live.Endpoints{Hub: e.hub, Context: ctx, Taps: taker, Options: live.ServeOptions{Heartbeat: time.Minute}}
	var ended atomic.Int32
	done := func() { ended.Add(1) }
	mux := http.NewServeMux()
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		if err := ep.ServeSSE(w, live.Stream{Page: live.PageGame, User: &ann, Done: done}); err != nil {
			t.Errorf("ServeSSE: %v", err)
		}
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		ep.ServeWebSocket(w, r, live.Stream{Page: live.PageJSON, User: &ann, Done: done})
	})
	mux.HandleFunc("/ws-nobody", func(w http.ResponseWriter, r *http.Request) {
		ep.ServeWebSocket(w, r, live.Stream{Page: live.PageJSON, AuthErr: game.Errorf(game.EUNAUTHORIZED, "sign in first"), Done: done})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	waitEnded := func(n int32) {
		t.Helper()
		testenv.Eventually(t, 5*time.Second, func() string {
			if got := ended.Load(); got != n {
				return fmt.Sprintf("Done called %d times, want %d", got, n)
			}
			return ""
		})
	}

	// SSE: the head, then the game page's first state with ann's fragments.
	res, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" || res.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("event stream head: %v", res.Header)
	}
	br := bufio.NewReader(res.Body)
	if line, _ := br.ReadString('\n'); line != "retry: 1000\n" {
		t.Fatalf("first line %q, want the retry interval", line)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream ended before a state event: %v", err)
		}
		if line == "event: state\n" {
			break
		}
	}
	waitCount(t, e.hub, "sse", 1)
	res.Body.Close()
	waitCount(t, e.hub, "sse", 0)
	waitEnded(1)

	// WebSocket with a player: taps are the player's, answers echo seq.
	dial := func(path string) *websocket.Conn {
		t.Helper()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+path, nil)
		if err != nil {
			t.Fatalf("dial %s: %v", path, err)
		}
		c.SetReadLimit(1 << 20)
		return c
	}
	next := func(c *websocket.Conn) (reply struct {
		Type   string          `json:"type"`
		Seq    json.RawMessage `json:"seq"`
		Count  int             `json:"count"`
		Status int             `json:"status"`
		Error  string          `json:"error"`
	}) {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		defer rcancel()
		for {
			_, b, err := c.Read(rctx)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := json.Unmarshal(b, &reply); err != nil {
				t.Fatalf("message %s: %v", b, err)
			}
			if reply.Type != "state" {
				return reply
			}
		}
	}
	ws := dial("/ws")
	waitCount(t, e.hub, "ws", 1)
	send := func(c *websocket.Conn, msg string) {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("send %s: %v", msg, err)
		}
	}
	send(ws, `{"count": 3, "seq": 7}`)
	if r := next(ws); r.Type != "ack" || string(r.Seq) != "7" || r.Count != 3 {
		t.Fatalf("answer to a tap of 3: %+v", r)
	}
	send(ws, `{"count": "13", "seq": "x"}`)
	if r := next(ws); r.Type != "error" || string(r.Seq) != `"x"` || r.Status != http.StatusConflict || r.Error != "the round is over" {
		t.Fatalf("answer to a refused tap: %+v", r)
	}
	taker.mu.Lock()
	got := strings.Join(taker.taps, ",")
	taker.mu.Unlock()
	if got != ann.ID+":3" {
		t.Fatalf("taps taken: %q, want ann's 3", got)
	}

	// Nobody signed in: every tap is answered with why, and the eleventh
	// refusal in a row closes the socket with 1008.
	nobody := dial("/ws-nobody")
	send(nobody, `{"seq": 1}`)
	if r := next(nobody); r.Status != http.StatusUnauthorized || r.Error != "sign in first" {
		t.Fatalf("answer without a player: %+v", r)
	}
	for range 11 {
		send(nobody, `{"seq": 1}`)
	}
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	for {
		if _, _, err := nobody.Read(rctx); err != nil {
			if s := websocket.CloseStatus(err); s != websocket.StatusPolicyViolation {
				t.Fatalf("socket without a player ended with %v (%v), want 1008", s, err)
			}
			break
		}
	}
	waitEnded(2)

	ws.Close(websocket.StatusNormalClosure, "")
	waitCount(t, e.hub, "ws", 0)
	waitEnded(3)
}

// A client's ping, and its close, are answered however long the socket was
// quiet: the write deadline of the server's last write does not outlive it
// into the pong or the close reply that coder/websocket writes.
func TestWebSocketAnswersPingsAfterQuiet(t *testing.T) {
	e := startHub(t, live.Options{})
	ann := e.join("ann")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ep := &live.Endpoints{Hub: e.hub, Context: ctx, Taps: &recTaker{},
		Options: live.ServeOptions{Heartbeat: time.Minute, WriteTimeout: 200 * time.Millisecond}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ep.ServeWebSocket(w, r, live.Stream{Page: live.PageJSON, User: &ann})
	}))
	defer srv.Close()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	msgs := make(chan []byte, 16)
	go func() { // reads the frames; a ping's pong arrives through here
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- b
		}
	}()
	if _, ok := <-msgs; !ok {
		t.Fatal("no first state")
	}
	for i := range 3 {
		time.Sleep(500 * time.Millisecond) // the game is quiet: no frame, no write
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err := c.Ping(pctx)
		pcancel()
		if err != nil {
			t.Fatalf("ping %d after %v of quiet: %v", i+1, 500*time.Millisecond, err)
		}
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"count":1,"seq":7}`)); err != nil {
		t.Fatal(err)
	}
	acked := false
	for b := range msgs {
		if strings.Contains(string(b), `"type":"ack","seq":7`) {
			acked = true
			break
		}
	}
	if !acked {
		t.Fatal("the socket closed before the tap's ack")
	}
	// After another quiet spell, the client's close is answered too: a
	// clean closing handshake, not a dropped connection.
	time.Sleep(500 * time.Millisecond)
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close after %v of quiet: %v", 500*time.Millisecond, err)
	}
}
