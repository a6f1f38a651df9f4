package live

import (
	"context"
	"time"

	"github.com/tapwars/tapwars/game"
)

// Endpoints serve the connections of the live endpoints, /events (SSE,
// sse.go) and /ws (WebSocket, websocket.go, with the taps it carries in
// socket_taps.go): each takes its request's connection over and serves it
// with the hub from goroutines of its own. The request then ends and frees
// what the HTTP server held for it, so an open stream costs a few KiB.
// The handlers decide who may connect and what they see (Stream).
type Endpoints struct {
	Hub *Hub
	// Context ends every stream (the server shuts down): streams outlive
	// their requests, so not the request's context.
	Context context.Context
	Options ServeOptions
	Taps    TapTaker // takes the taps sent over a WebSocket
}

// Stream is one live connection to serve: what it shows and to whom.
type Stream struct {
	Page Page
	// User is the signed-in player: a page gets their own stats, and a
	// WebSocket carries their taps. Nil: nobody is signed in, and AuthErr
	// says why (the answer to every tap sent over the socket).
	User    *game.User
	AuthErr error
	Done    func() // called once when the connection ends (frees its slot); may be nil
}

// viewer is who gets personal fragments: the player on a page, nobody on
// a JSON stream.
func (s Stream) viewer() *game.User {
	if s.Page.HTML() {
		return s.User
	}
	return nil
}

// base is the context streams run under.
func (e *Endpoints) base() context.Context {
	if e.Context == nil {
		return context.Background()
	}
	return e.Context
}

// done calls Done, if any.
func (s Stream) done() {
	if s.Done != nil {
		s.Done()
	}
}

// deadlineOf is ctx's deadline, or 10 s from now.
func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(10 * time.Second)
}
