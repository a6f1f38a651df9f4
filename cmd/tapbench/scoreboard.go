package main

// -scoreboard-server: the bare scoreboard server, the ceiling tapwars'
// fan-out is compared with. It holds the game in memory and serves what
// tapbench uses of tapwars (POST /api/join, POST /api/tap, GET
// /api/game-state, GET /events, GET /ws) with the same snapshot (store.Store's
// rules: leaderboard, players online, round, teams) and the same frames
// (live.Render), pushed at the hub's pace (scoreboard_live.go). No Redis,
// no Kafka, no Echo, no tokens to check: a tap is a map lookup and three
// additions.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/store"
)

// scoreboard is the bare server's game.
type scoreboard struct {
	mu       sync.Mutex
	players  []*boardPlayer
	byToken  map[string]*boardPlayer
	blue     int64
	red      int64
	total    int64
	updated  int64         // unix ms of the last tap, 0: none
	changed  chan struct{} // a frame is due (room for one: changes coalesce)
	leaderN  int           // leaderboard entries per snapshot, as the hub reads (live.Options.LeaderboardN)
	onlineMS int64         // store.OnlineWindow
}

type boardPlayer struct {
	game.User
	token string
	seen  int64 // unix ms: joined or last tapped
}

func newScoreboard() *scoreboard {
	return &scoreboard{byToken: map[string]*boardPlayer{}, changed: make(chan struct{}, 1), leaderN: 100,
		onlineMS: store.OnlineWindow.Milliseconds()}
}

func (s *scoreboard) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// join adds a player on the team with fewer players online, as the store does.
func (s *scoreboard) join(name string, now time.Time) *boardPlayer {
	ms := now.UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	b, r := s.online(ms)
	team := game.Red
	if b < r || (b == r && len(s.players)%2 == 0) {
		team = game.Blue
	}
	p := &boardPlayer{User: game.User{ID: randomHex(16), Username: name, Team: team, JoinedAt: ms, SessionID: randomHex(16)},
		token: "bare." + randomHex(24), seen: ms}
	s.players = append(s.players, p)
	s.byToken[p.token] = p
	s.notify()
	return p
}

// online counts the players seen within the online window, per team.
func (s *scoreboard) online(ms int64) (blue, red int64) {
	for _, p := range s.players {
		if p.seen >= ms-s.onlineMS {
			if p.Team == game.Blue {
				blue++
			} else {
				red++
			}
		}
	}
	return blue, red
}

// tap counts n taps of the player with token, or reports it unknown.
func (s *scoreboard) tap(token string, n int64, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.byToken[token]
	if p == nil {
		return false
	}
	p.TapCount += n
	p.seen = now.UnixMilli()
	if p.Team == game.Blue {
		s.blue += n
	} else {
		s.red += n
	}
	s.total += n
	s.updated = p.seen
	s.notify()
	return true
}

func (s *scoreboard) player(token string) (game.User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.byToken[token]
	if p == nil {
		return game.User{}, false
	}
	return p.User, true
}

// snapshot is the game as store.Store.Snapshot reads it: the top players
// by taps (ties share a rank, and order as Redis orders them: id
// descending), the most recently seen players online (at most
// store.MaxOnlineListed), open play, the default teams.
func (s *scoreboard) snapshot(now time.Time, top int) game.Snapshot {
	ms := now.UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := game.State{BlueScore: s.blue, RedScore: s.red, TotalTaps: s.total, LastUpdated: s.updated}
	if st.LastUpdated == 0 {
		st.LastUpdated = ms
	}
	st.BlueOnline, st.RedOnline = s.online(ms)
	st.ActiveUsers = st.BlueOnline + st.RedOnline
	snap := game.Snapshot{GameState: st, Users: []game.Player{}, Leaderboard: []game.LeaderboardEntry{}, Teams: game.DefaultTeams(),
		Round: (&game.RoundSchedule{Mode: game.ModeOpen}).State(0, nil)}

	ranked := make([]*boardPlayer, 0, len(s.players))
	recent := make([]*boardPlayer, 0, len(s.players))
	for _, p := range s.players {
		if p.TapCount > 0 {
			ranked = append(ranked, p)
		}
		if p.seen >= ms-s.onlineMS {
			recent = append(recent, p)
		}
	}
	slices.SortFunc(ranked, func(a, b *boardPlayer) int {
		if a.TapCount != b.TapCount {
			return int(b.TapCount - a.TapCount)
		}
		return strings.Compare(b.ID, a.ID)
	})
	rank := 0
	for i, p := range ranked[:min(top, len(ranked))] {
		if i == 0 || p.TapCount != ranked[i-1].TapCount {
			rank = i + 1
		}
		snap.Leaderboard = append(snap.Leaderboard, game.LeaderboardEntry{ID: p.ID, Username: p.Username, Team: p.Team, TapCount: p.TapCount, Rank: rank})
	}
	slices.SortFunc(recent, func(a, b *boardPlayer) int {
		if a.seen != b.seen {
			return int(b.seen - a.seen)
		}
		return strings.Compare(b.ID, a.ID)
	})
	for _, p := range recent[:min(store.MaxOnlineListed, len(recent))] {
		snap.Users = append(snap.Users, p.Public())
	}
	return snap
}

// handler serves the bare server's endpoints.
func (s *scoreboard) handler(f *fanout) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/join", s.serveJoin)
	mux.HandleFunc("POST /api/tap", s.serveTap)
	mux.HandleFunc("GET /api/game-state", func(w http.ResponseWriter, r *http.Request) {
		top := s.leaderN
		if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n > 0 {
			top = min(n, top)
		}
		writeJSON(w, http.StatusOK, s.snapshot(time.Now(), top))
	})
	mux.HandleFunc("GET /events", f.serveSSE)
	mux.HandleFunc("GET /ws", f.serveWS)
	return mux
}

func bearer(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

// serveJoin: a new player (201), or with a known token the same one (200).
func (s *scoreboard) serveJoin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Username string `json:"username"`
	}
	err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&req)
	if u, ok := s.player(bearer(r)); ok {
		writeJSON(w, http.StatusOK, map[string]any{"user": u, "token": bearer(r)})
		return
	}
	if err != nil || req.Username == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "username required"})
		return
	}
	p := s.join(req.Username, time.Now())
	writeJSON(w, http.StatusCreated, map[string]any{"user": p.User, "token": p.token})
}

// serveTap: 202 once the taps are counted (in memory).
func (s *scoreboard) serveTap(w http.ResponseWriter, r *http.Request) {
	n := int64(1)
	if r.ContentLength != 0 {
		var req struct {
			Count int64 `json:"count"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&req); err == nil && req.Count > 0 {
			n = req.Count
		}
	}
	now := time.Now()
	if !s.tap(bearer(r), n, now) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unknown player"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"success":true}`))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// serveScoreboard runs the bare scoreboard server on addr until ctx ends.
func serveScoreboard(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := newScoreboard()
	f := newFanout(s)
	go f.run(ctx)
	srv := &http.Server{Handler: s.handler(f), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 90 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintln(os.Stderr, "tapbench: bare scoreboard server on", "http://"+ln.Addr().String())
	<-ctx.Done()
	return srv.Close()
}
