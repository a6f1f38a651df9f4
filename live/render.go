package live

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/a-h/templ"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/views"
)

// View is what one frame shows.
type View struct {
	Snapshot game.Snapshot
	// Board is the leaderboard the pages show: the snapshot's, or the one
	// before while Options.BoardInterval holds a change back.
	Board  []game.LeaderboardEntry
	Status Status // put in front of the state; StatusNone: nothing
}

// byFormat holds one message per format.
type byFormat [numTransports][numPages][]byte

func (b *byFormat) get(f Format) []byte    { return b[f.Transport][f.Page] }
func (b *byFormat) set(f Format, m []byte) { b[f.Transport][f.Page] = m }

// pageParts are the rendered fragments of each HTML page, one per
// views part, in the views' order (the leaderboard last).
type pageParts [numPages][][]byte

// htmlPages are the pages fed HTML fragments.
var htmlPages = [...]Page{PageGame, PageBoard}

// components are page p's parts for s.
func components(p Page, s game.Snapshot) []templ.Component {
	if p == PageBoard {
		return views.LeaderboardParts(s)
	}
	return views.StateParts(s, views.GameTop)
}

// Rendered is one frame's bytes in every format: the whole state, and what
// a client that has the frame it was rendered after needs (Delta).
type Rendered struct {
	full  byFormat
	delta byFormat // what a client that has prev needs; nil: the whole frame
	parts pageParts
	users onlineKey
}

// onlineKey tells when the players online changed enough for a JSON
// frame to carry the "users" list again.
type onlineKey struct{ active, listed int }

// Whole is the message a client of format f gets when it needs the whole
// state (its first, or after it fell behind).
func (r *Rendered) Whole(f Format) []byte { return r.full.get(f) }

// Delta is the message a client of format f that has the previous frame
// needs (empty: nothing changed), or nil when there is none (a status
// frame, a frame rendered after none): send Whole.
//
// HTML pages get the parts that changed. JSON clients get the state
// without the "users" list while the number of players online stays the
// same: the list (up to store.MaxOnlineListed players) is most of a
// frame's bytes, and changes with every tap; GET /api/game-state has it.
func (r *Rendered) Delta(f Format) []byte { return r.delta.get(f) }

// Render encodes v in every format. prev is the frame the clients had
// before (nil: none); a frame with a status, or rendered after none,
// carries no delta. Render reads nothing and keeps nothing: the same
// arguments give the same bytes.
func Render(prev *Rendered, v View) (*Rendered, error) {
	r := &Rendered{users: onlineKey{int(v.Snapshot.GameState.ActiveUsers), len(v.Snapshot.Users)}}
	js, err := json.Marshal(top(v.Snapshot, 10))
	if err != nil {
		return nil, fmt.Errorf("render state JSON: %w", err)
	}
	var jsDelta []byte // the state without its users
	if prev != nil && v.Status == StatusNone && prev.users == r.users {
		if jsDelta, err = stateWithoutUsers(v.Snapshot); err != nil {
			return nil, err
		}
	}
	shown := v.Snapshot
	shown.Leaderboard = v.Board
	for _, p := range htmlPages {
		if r.parts[p], err = renderParts(components(p, shown)); err != nil {
			return nil, err
		}
	}
	var status, sseStatus, sseJSON []byte
	if v.Status != StatusNone {
		if status, err = statusSpan(v.Status, string(v.Status)); err != nil {
			return nil, err
		}
		sseText := string(v.Status)
		if v.Status == StatusLive {
			sseText = "live (SSE)"
		}
		if sseStatus, err = statusSpan(v.Status, sseText); err != nil {
			return nil, err
		}
		sseJSON = sseEvent("status", []byte(`{"status":"`+v.Status+`"}`))
		js = append([]byte(`{"status":"`+v.Status+`",`), js[1:]...)
	}
	r.full.set(SSEJSON, append(sseJSON, sseEvent("state", js)...))
	// A JSON socket also carries answers to taps: its state frames say
	// what they are.
	r.full.set(WSJSON, append([]byte(`{"type":"state",`), js[1:]...))
	// A whole frame is a new client's first view: it shows the newest
	// leaderboard even while deltas hold a change back (deltas then skip
	// it or bring a newer one; a page never goes back).
	whole := r.parts
	if !slices.Equal(v.Board, v.Snapshot.Leaderboard) {
		for _, p := range htmlPages {
			b, err := renderLine(components(p, v.Snapshot)[views.PartLeaderboard])
			if err != nil {
				return nil, err
			}
			whole[p] = append(slices.Clone(whole[p][:views.PartLeaderboard]), b)
		}
	}
	for _, p := range htmlPages {
		body := bytes.Join(whole[p], nil)
		r.full.set(Format{WS, p}, append(slices.Clone(status), body...))
		r.full.set(Format{SSE, p}, sseEvent("state", append(slices.Clone(sseStatus), body...)))
	}
	if jsDelta != nil {
		r.delta.set(SSEJSON, sseEvent("state", jsDelta))
		r.delta.set(WSJSON, append([]byte(`{"type":"state",`), jsDelta[1:]...))
	}
	if prev == nil || v.Status != StatusNone {
		return r, nil
	}
	for _, p := range htmlPages {
		if len(prev.parts[p]) != len(r.parts[p]) {
			return r, nil
		}
	}
	for _, p := range htmlPages {
		d := []byte{} // nothing changed: nothing to send
		for j, part := range r.parts[p] {
			if !bytes.Equal(part, prev.parts[p][j]) {
				d = append(d, part...)
			}
		}
		r.delta.set(Format{WS, p}, d)
		if len(d) == 0 {
			r.delta.set(Format{SSE, p}, []byte{})
		} else {
			r.delta.set(Format{SSE, p}, sseEvent("state", d))
		}
	}
	return r, nil
}

// usersKey is the "users" field as a nil list marshals: strings escape
// their quotes, so it occurs only as the key.
var usersKey = []byte(`,"users":null`)

// stateWithoutUsers is the state JSON of s without its "users" field.
func stateWithoutUsers(s game.Snapshot) ([]byte, error) {
	s = top(s, 10)
	s.Users = nil
	js, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("render state JSON: %w", err)
	}
	return bytes.Replace(js, usersKey, nil, 1), nil
}

// statusSpan renders the connection status element pages show for s.
func statusSpan(s Status, text string) ([]byte, error) {
	b, err := renderLine(views.ConnectionStatus(strings.ReplaceAll(string(s), " ", "-"), text, true))
	if err != nil {
		return nil, err
	}
	return append(b, ' '), nil
}

func renderParts(cs []templ.Component) ([][]byte, error) {
	out := make([][]byte, 0, len(cs))
	for _, c := range cs {
		b, err := renderLine(c)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// top returns snap with at most n leaderboard entries.
func top(snap game.Snapshot, n int) game.Snapshot {
	if len(snap.Leaderboard) > n {
		snap.Leaderboard = snap.Leaderboard[:n]
	}
	return snap
}

// renderLine renders a component on one line: SSE's data: field ends at a
// newline, and names cannot contain one.
func renderLine(c templ.Component) ([]byte, error) {
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		return nil, fmt.Errorf("render fragments: %w", err)
	}
	return bytes.ReplaceAll(bytes.ReplaceAll(buf.Bytes(), []byte("\r"), nil), []byte("\n"), []byte(" ")), nil
}

func sseEvent(name string, data []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(data) + len(name) + 16)
	b.WriteString("event: ")
	b.WriteString(name)
	b.WriteString("\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
	return b.Bytes()
}

// Personal renders a player's own fragments in format f's encoding (nil
// for JSON clients, which get no personal fragments).
func Personal(st game.PlayerStats, f Format) ([]byte, error) {
	html, err := renderLine(views.MeFragment(st.Taps, st.Rank, st.Of))
	if err != nil {
		return nil, err
	}
	return encodeHTML(f, html), nil
}

// kickedMessage is the notice a kicked player's page gets, in format f's
// encoding (nil for JSON streams, which are just closed).
func kickedMessage(f Format) []byte {
	html, err := renderLine(views.Kicked())
	if err != nil {
		return nil
	}
	return encodeHTML(f, html)
}

// encodeHTML wraps fragments for an HTML page's transport (nil for JSON).
func encodeHTML(f Format, html []byte) []byte {
	switch {
	case !f.Page.HTML():
		return nil
	case f.Transport == SSE:
		return sseEvent("state", html)
	}
	return html
}
