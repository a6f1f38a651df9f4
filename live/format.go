package live

// Transport is how a client is connected.
type Transport uint8

const (
	SSE Transport = iota // Server-Sent Events: each message an event with one data: line
	WS                   // WebSocket: each message one text message
	numTransports
)

// String is the transport as a metric label.
func (t Transport) String() string {
	if t == WS {
		return "ws"
	}
	return "sse"
}

// Page is what a client shows.
type Page uint8

const (
	PageJSON  Page = iota // the /api/game-state JSON
	PageGame              // the game page's HTML fragments
	PageBoard             // the leaderboard page's HTML fragments
	numPages
)

func (p Page) String() string {
	switch p {
	case PageGame:
		return "game"
	case PageBoard:
		return "board"
	}
	return "json"
}

// HTML reports whether the page is fed HTML fragments (not JSON).
func (p Page) HTML() bool { return p != PageJSON }

// Format is what a client receives: a page's content over a transport.
type Format struct {
	Transport Transport
	Page      Page
}

func (f Format) String() string { return f.Transport.String() + "/" + f.Page.String() }

// The formats served (sse.go, websocket.go).
var (
	SSEJSON  = Format{SSE, PageJSON}
	SSEGame  = Format{SSE, PageGame}
	SSEBoard = Format{SSE, PageBoard}
	WSJSON   = Format{WS, PageJSON}
	WSGame   = Format{WS, PageGame}
	WSBoard  = Format{WS, PageBoard}
)
