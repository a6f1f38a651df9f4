package handlers

// The live endpoints: who may connect and what they see is decided here;
// package live serves the connections (live/sse.go, live/websocket.go).

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/live"
)

// events: GET /events — Server-Sent Events. ?format=json streams the
// /api/game-state JSON as `event: state`; otherwise the stream carries the
// page's HTML fragments (?page=leaderboard for the leaderboard page's),
// with personal ones for the signed-in player.
func (s *Server) events(c echo.Context) error {
	release, err := s.liveSlot(c)
	if err != nil {
		return err
	}
	st := live.Stream{Page: livePage(c), Done: release}
	if st.Page.HTML() {
		st.User, st.AuthErr = s.livePlayer(c)
	}
	return s.live.ServeSSE(c.Response(), st)
}

// ws: GET /ws — the same updates as /events over WebSocket; the client
// sends its player's taps over it (live/socket_taps.go), under the rules
// of POST /api/tap (socketTapper). Cross-origin upgrades are refused.
func (s *Server) ws(c echo.Context) error {
	release, err := s.liveSlot(c)
	if err != nil {
		return err
	}
	// The player whose taps the socket carries (also on a JSON socket),
	// resolved once; without one, AuthErr answers every tap.
	st := live.Stream{Page: livePage(c), Done: release}
	st.User, st.AuthErr = s.livePlayer(c)
	s.live.ServeWebSocket(c.Response(), c.Request(), st)
	return nil
}

// livePage is what a live stream (SSE or WebSocket) shows: the game-state
// JSON for ?format=json, the leaderboard page's fragments for
// ?page=leaderboard, else the game page's.
func livePage(c echo.Context) live.Page {
	switch {
	case c.QueryParam("format") == "json":
		return live.PageJSON
	case c.QueryParam("page") == "leaderboard":
		return live.PageBoard
	}
	return live.PageGame
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

// socketTapper takes the taps sent over a WebSocket (live.TapTaker) by the
// rules of POST /api/tap.
type socketTapper struct{ s *Server }

// Tap takes a tap of the socket's player as they are now: an import may
// have left them out (401) or moved them to the other team since the
// upgrade, and a kick removes them.
func (t socketTapper) Tap(ctx context.Context, u game.User, n int) (game.TapEvent, error) {
	u, err := t.s.signedIn(ctx, u, true)
	if err != nil {
		countRejected(err)
		return game.TapEvent{}, err
	}
	return t.s.acceptTap(ctx, u, n)
}
