package live_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tapwars/tapwars/live"
)

// Hub.Kick tells every page of a kicked player at once (WS: the #kicked
// fragment; SSE: the same in a state event) and ends those streams with
// ErrKicked; other players' streams go on.
func TestKickTellsThePlayersPagesAtOnce(t *testing.T) {
	e := startHub(t, live.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ann, bob := e.join("ann"), e.join("bob")
	annWS, annSSE, bobWS := newRecConn(), newRecConn(), newRecConn()
	opt := live.ServeOptions{Heartbeat: time.Minute}
	sWS := serve(ctx, e.hub, annWS, live.WSGame, &ann, opt)
	sSSE := serve(ctx, e.hub, annSSE, live.SSEGame, &ann, opt)
	sBob := serve(ctx, e.hub, bobWS, live.WSGame, &bob, opt)
	waitCount(t, e.hub, "ws", 2)
	waitCount(t, e.hub, "sse", 1)

	start := time.Now()
	e.hub.Kick([]string{ann.ID, "someone-else"})
	for name, s := range map[string]*served{"ws": sWS, "sse": sSSE} {
		select {
		case <-s.done:
		case <-time.After(2 * time.Second):
			t.Fatalf("ann's %s stream still open after the kick", name)
		}
		if !errors.Is(s.err, live.ErrKicked) {
			t.Errorf("ann's %s stream ended with %v, want ErrKicked", name, s.err)
		}
	}
	t.Logf("both of ann's streams told and closed %v after the kick", time.Since(start).Round(time.Millisecond))
	for name, c := range map[string]*recConn{"ws": annWS, "sse": annSSE} {
		msgs, _, _ := c.snapshot()
		last := msgs[len(msgs)-1]
		if !bytes.Contains(last, []byte(`id="kicked"`)) || !bytes.Contains(last, []byte(`hx-swap-oob="true"`)) {
			t.Errorf("ann's %s stream's last message: %s", name, last)
		}
		if name == "sse" && !bytes.HasPrefix(last, []byte("event: state\ndata: ")) {
			t.Errorf("sse: %q", last)
		}
	}
	select {
	case <-sBob.done:
		t.Fatalf("bob's stream ended: %v", sBob.err)
	case <-time.After(100 * time.Millisecond):
	}
	if c := e.hub.Count(); c["ws"] != 1 || c["sse"] != 0 {
		t.Fatalf("clients after the kick: %v", c)
	}
}
