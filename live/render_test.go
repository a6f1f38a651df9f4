package live

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/tapwars/tapwars/game"
)

// The renderer is pure: these tables need no Redis and no hub.

var allFormats = []Format{SSEJSON, SSEGame, SSEBoard, WSJSON, WSGame, WSBoard}

// testSnapshot is a game of n players (the leaderboard their top 100).
func testSnapshot(n int, total int64) game.Snapshot {
	var s game.Snapshot
	for i := range n {
		team := game.Blue
		if i%2 == 1 {
			team = game.Red
		}
		id := fmt.Sprintf("%032x", i)
		s.Users = append(s.Users, game.Player{ID: id, Username: fmt.Sprintf("player %d", i), Team: team, TapCount: int64(1000 - i)})
		if i < 100 {
			s.Leaderboard = append(s.Leaderboard, game.LeaderboardEntry{ID: id, Username: fmt.Sprintf("player %d", i), Team: team, TapCount: int64(1000 - i), Rank: i + 1})
		}
	}
	s.GameState = game.State{BlueScore: total / 2, RedScore: total - total/2, TotalTaps: total, ActiveUsers: int64(n), BlueOnline: int64(n / 2), RedOnline: int64(n - n/2), LastUpdated: 1}
	return s
}

func view(s game.Snapshot, st Status) View {
	return View{Snapshot: s, Board: s.Leaderboard, Status: st}
}

func mustRender(t *testing.T, prev *Rendered, v View) *Rendered {
	t.Helper()
	r, err := Render(prev, v)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var pageIDs = map[Page][]string{
	PageGame:  {"blue-score", "red-score", "total-taps", "blue-online", "red-online", "tug-bar", "leaderboard"},
	PageBoard: {"blue-score", "red-score", "total-taps", "blue-online", "red-online", "tug-bar", "leaderboard-full"},
}

func hasID(b []byte, id string) bool { return bytes.Contains(b, []byte(`id="`+id+`"`)) }

// A first frame (rendered after none) is whole in every format and has no
// delta.
func TestRenderFirstFrameIsWhole(t *testing.T) {
	r := mustRender(t, nil, view(testSnapshot(20, 7), StatusNone))
	for _, f := range allFormats {
		if r.Delta(f) != nil {
			t.Errorf("%v: a first frame has a delta", f)
		}
		if len(r.Whole(f)) == 0 {
			t.Errorf("%v: no whole frame", f)
		}
		for _, id := range pageIDs[f.Page] {
			if !hasID(r.Whole(f), id) {
				t.Errorf("%v: whole frame lacks #%s", f, id)
			}
		}
	}
}

// After a frame, the HTML pages get only the parts that changed (nothing
// when nothing did); the whole frame stays available.
func TestRenderDeltasCarryOnlyWhatChanged(t *testing.T) {
	base := testSnapshot(20, 8)
	blue := base
	blue.GameState.BlueScore++
	blue.GameState.TotalTaps++
	board := testSnapshot(20, 8)
	board.Leaderboard[0].TapCount++
	for _, tc := range []struct {
		name      string
		next      game.Snapshot
		want, not []string
	}{
		{"nothing changed", base, nil, pageIDs[PageGame]},
		{"blue tapped", blue, []string{"blue-score", "total-taps", "tug-bar"}, []string{"red-score", "blue-online", "leaderboard"}},
		{"leaderboard changed", board, []string{"leaderboard"}, []string{"blue-score", "total-taps", "tug-bar"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev := mustRender(t, nil, view(base, StatusNone))
			r := mustRender(t, prev, view(tc.next, StatusNone))
			for _, p := range htmlPages {
				d := r.Delta(Format{WS, p})
				if d == nil {
					t.Fatalf("%v: no delta after a frame", p)
				}
				for _, id := range tc.want {
					if p == PageBoard && id == "leaderboard" {
						id = "leaderboard-full"
					}
					if !hasID(d, id) {
						t.Errorf("%v: delta lacks #%s: %s", p, id, d)
					}
				}
				for _, id := range tc.not {
					if p == PageBoard && id == "leaderboard" {
						id = "leaderboard-full"
					}
					if hasID(d, id) {
						t.Errorf("%v: delta carries unchanged #%s", p, id)
					}
				}
				sse := r.Delta(Format{SSE, p})
				switch {
				case len(d) == 0 && len(sse) != 0:
					t.Errorf("%v: an SSE delta of nothing is %q", p, sse)
				case len(d) > 0 && string(sse) != "event: state\ndata: "+string(d)+"\n\n":
					t.Errorf("%v: the SSE delta is not the WebSocket one as an event: %q", p, sse)
				}
				if tc.name == "blue tapped" && len(d)*3 > len(r.Whole(Format{WS, p})) {
					t.Errorf("%v: delta %d bytes of a whole %d", p, len(d), len(r.Whole(Format{WS, p})))
				}
			}
		})
	}
}

// A leaderboard held back (Board older than the snapshot's) shows in
// deltas; a whole frame, a new client's first view, has the newest.
func TestRenderWholeFrameShowsTheNewestLeaderboard(t *testing.T) {
	old := testSnapshot(20, 8)
	snap := testSnapshot(20, 9)
	snap.Leaderboard[0].Username = "newest name"
	prev := mustRender(t, nil, view(old, StatusNone))
	r := mustRender(t, prev, View{Snapshot: snap, Board: old.Leaderboard})
	for _, p := range htmlPages {
		if !bytes.Contains(r.Whole(Format{WS, p}), []byte("newest name")) {
			t.Errorf("%v: whole frame shows the held-back leaderboard", p)
		}
		if d := r.Delta(Format{WS, p}); bytes.Contains(d, []byte("leaderboard")) {
			t.Errorf("%v: delta carries the held-back leaderboard: %s", p, d)
		}
	}
}

// A status goes in front of the state in every format, and a status frame
// is always whole (the page may have missed anything while it was away).
func TestRenderStatusPrefixes(t *testing.T) {
	snap := testSnapshot(5, 3)
	for _, st := range []Status{StatusLive, StatusReconnecting, StatusCatchingUp} {
		t.Run(string(st), func(t *testing.T) {
			prev := mustRender(t, nil, view(snap, StatusNone))
			r := mustRender(t, prev, view(snap, st))
			state := strings.ReplaceAll(string(st), " ", "-")
			sseText := string(st)
			if st == StatusLive {
				sseText = "live (SSE)"
			}
			for _, f := range allFormats {
				if r.Delta(f) != nil {
					t.Errorf("%v: a status frame has a delta", f)
				}
				b := string(r.Whole(f))
				var wantPrefix string
				switch {
				case f == SSEJSON:
					wantPrefix = "event: status\ndata: {\"status\":\"" + string(st) + "\"}\n\nevent: state\ndata: {\"status\":\"" + string(st) + "\",\"gameState\""
				case f == WSJSON:
					wantPrefix = `{"type":"state","status":"` + string(st) + `","gameState"`
				case f.Transport == SSE:
					wantPrefix = "event: state\ndata: <span id=\"connection-status\""
				default:
					wantPrefix = `<span id="connection-status"`
				}
				if !strings.HasPrefix(b, wantPrefix) {
					t.Errorf("%v: frame starts %.120q, want %q", f, b, wantPrefix)
				}
				if f.Page.HTML() {
					text := string(st)
					if f.Transport == SSE {
						text = sseText
					}
					if !strings.Contains(b, `data-state="`+state+`"`) || !strings.Contains(b, ">"+text+"<") {
						t.Errorf("%v: status element lacks state %q or text %q: %.300s", f, state, text, b)
					}
				}
			}
		})
	}
	// Without a status, nothing is in front.
	r := mustRender(t, nil, view(snap, StatusNone))
	for _, f := range allFormats {
		if bytes.Contains(r.Whole(f), []byte("connection-status")) || bytes.Contains(r.Whole(f), []byte(`"status"`)) {
			t.Errorf("%v: a frame without status carries one", f)
		}
	}
}

var sseLine = regexp.MustCompile(`^(event: [a-z]+|data: .*)$`)

// Every SSE message is events of one data: line each, also when a name
// holds line breaks.
func TestRenderSSEDataIsOneLine(t *testing.T) {
	snap := testSnapshot(12, 5)
	snap.Leaderboard[0].Username = "two\nlines\r\nhere"
	snap.Users[0].Username = snap.Leaderboard[0].Username
	prev := mustRender(t, nil, view(testSnapshot(12, 4), StatusNone))
	for _, st := range []Status{StatusNone, StatusLive} {
		r := mustRender(t, prev, view(snap, st))
		for _, f := range []Format{SSEJSON, SSEGame, SSEBoard} {
			for _, m := range [][]byte{r.Whole(f), r.Delta(f)} {
				if len(m) == 0 {
					continue
				}
				if !bytes.HasSuffix(m, []byte("\n\n")) {
					t.Errorf("%v: message does not end an event: %q", f, m)
				}
				for ev := range strings.SplitSeq(strings.TrimSuffix(string(m), "\n\n"), "\n\n") {
					lines := strings.Split(ev, "\n")
					if len(lines) != 2 || !sseLine.MatchString(lines[0]) || !strings.HasPrefix(lines[1], "data: ") {
						t.Errorf("%v: event is not one event: line and one data: line: %q", f, ev)
					}
				}
			}
		}
	}
}

// JSON clients get the /api/game-state document: the top 10 of the
// leaderboard and every player, the socket's marked as a state message.
func TestRenderJSONIsTheWholeState(t *testing.T) {
	snap := testSnapshot(30, 11)
	prev := mustRender(t, nil, view(testSnapshot(30, 10), StatusNone))
	r := mustRender(t, prev, view(snap, StatusNone))
	var ws struct {
		Type string `json:"type"`
		game.Snapshot
	}
	if err := json.Unmarshal(r.Whole(WSJSON), &ws); err != nil {
		t.Fatalf("socket JSON: %v: %s", err, r.Whole(WSJSON))
	}
	if ws.Type != "state" || ws.GameState != snap.GameState || len(ws.Users) != 30 || len(ws.Leaderboard) != 10 {
		t.Fatalf("socket JSON: type %q, state %+v, %d users, %d leaderboard rows", ws.Type, ws.GameState, len(ws.Users), len(ws.Leaderboard))
	}
	data, ok := strings.CutPrefix(string(r.Whole(SSEJSON)), "event: state\ndata: ")
	if !ok {
		t.Fatalf("SSE JSON: %q", r.Whole(SSEJSON))
	}
	var sse game.Snapshot
	if err := json.Unmarshal([]byte(strings.TrimSuffix(data, "\n\n")), &sse); err != nil || sse.GameState != snap.GameState {
		t.Fatalf("SSE JSON: %v: %+v", err, sse.GameState)
	}
}

// A client that was sent the frame before gets the delta; one further
// behind (or new) gets the whole frame.
func TestFrameSinceGivesAClientBehindTheWholeFrame(t *testing.T) {
	prev := &Frame{Seq: 5, Snapshot: testSnapshot(10, 1)}
	prev.board = shownBoard{entries: prev.Snapshot.Leaderboard}
	prev.render()
	f := &Frame{Seq: 6, Snapshot: testSnapshot(10, 2), prev: prev, prevSeq: 5}
	f.board = shownBoard{entries: f.Snapshot.Leaderboard}
	for _, tc := range []struct {
		last  uint64
		whole bool
	}{{5, false}, {4, true}, {1, true}, {0, true}} {
		for _, format := range allFormats {
			got := f.Since(format, tc.last)
			if whole := bytes.Equal(got, f.Bytes(format)); whole != tc.whole {
				t.Errorf("%v last sent %d: whole %v, want %v", format, tc.last, whole, tc.whole)
			}
		}
	}
}

// After a frame, JSON clients get the state without the "users" list
// while the number online stays the same — every other field of the
// game-state document, so its size does not depend on the players online;
// when the number online changes (or after a status) the frame is whole.
func TestRenderJSONDeltaLeavesOutTheUsers(t *testing.T) {
	var keys []string
	st := reflect.TypeFor[game.Snapshot]()
	for i := range st.NumField() {
		if k, _, _ := strings.Cut(st.Field(i).Tag.Get("json"), ","); k != "-" && k != "users" {
			keys = append(keys, k)
		}
	}
	sizes := map[int]int{}
	for _, n := range []int{3, 30, 100} {
		prev := mustRender(t, nil, view(testSnapshot(n, 10), StatusNone))
		next := testSnapshot(n, 11)
		next.Users[0].TapCount++
		r := mustRender(t, prev, view(next, StatusNone))
		for _, f := range []Format{WSJSON, SSEJSON} {
			d := r.Delta(f)
			if f == SSEJSON {
				body, ok := strings.CutPrefix(string(d), "event: state\ndata: ")
				if !ok || !strings.HasSuffix(body, "\n\n") {
					t.Fatalf("%d players, %v: %q", n, f, d)
				}
				d = []byte(strings.TrimSuffix(body, "\n\n"))
			}
			var got map[string]json.RawMessage
			if err := json.Unmarshal(d, &got); err != nil {
				t.Fatalf("%d players, %v: %v: %s", n, f, err, d)
			}
			if _, ok := got["users"]; ok {
				t.Errorf("%d players, %v: the delta carries the users", n, f)
			}
			for _, k := range keys {
				if _, ok := got[k]; !ok {
					t.Errorf("%d players, %v: the delta lacks %q", n, f, k)
				}
			}
			if f == WSJSON && string(got["type"]) != `"state"` {
				t.Errorf("%d players: socket delta type %s", n, got["type"])
			}
			var gs game.State
			if err := json.Unmarshal(got["gameState"], &gs); err != nil || gs != next.GameState {
				t.Errorf("%d players, %v: gameState %+v, want %+v", n, f, gs, next.GameState)
			}
		}
		sizes[n] = len(r.Delta(WSJSON))
		// Someone came online: the list comes again.
		joined := testSnapshot(n+1, 12)
		if d := mustRender(t, r, view(joined, StatusNone)).Delta(WSJSON); d != nil {
			t.Errorf("%d players, one joined: JSON delta %.200s, want the whole frame", n, d)
		}
		if d := mustRender(t, r, view(next, StatusLive)).Delta(WSJSON); d != nil {
			t.Errorf("%d players: a status frame has a JSON delta", n)
		}
	}
	// 30 and 100 online: both fill the top 10; only the counts' digits differ.
	if d := sizes[100] - sizes[30]; d < 0 || d > 4 {
		t.Errorf("JSON delta bytes by players online: %v; want the same but for the counts' digits", sizes)
	}
}
