// Package views holds the templ components of tapwars: the join, game and
// leaderboard pages, and the fragments the live hub pushes over WebSocket or
// SSE. Every live element has one component that renders it both in the
// page and, with hx-swap-oob="true", as an update, so the two cannot drift.
//
// Edit the .templ files and run `templ generate` (templ v0.3.1100); the
// generated *_templ.go files are committed.
package views

import (
	"context"
	"math"
	"net/url"
	"strconv"

	"github.com/a-h/templ"
	"github.com/tapwars/tapwars/game"
)

// PageData is what the game and leaderboard pages need.
type PageData struct {
	Me        game.User     // the signed-in player
	Rank      int           // 1-based rank (ties share one), 0 = not ranked yet
	RankOf    int64         // players ranked
	State     game.Snapshot // current state (Leaderboard holds up to 100; the game page shows the top 10)
	Transport string        // "auto" (WebSocket, fall back to SSE), "ws" or "sse" (forced)
	// TapRate and TapBurst are the server's tap limit per player (0: none):
	// app.js shows a tap at once only when the server will surely take it.
	TapRate  float64
	TapBurst int
}

// GameTop is how many leaderboard rows the game page shows; the hub should
// call StateFragments(s, GameTop).
const GameTop = 10

// StateParts are the elements of StateFragments one by one, in order. The
// leaderboard is last (PartLeaderboard): the hub sends a client only the
// parts that changed since its previous frame.
func StateParts(s game.Snapshot, top int) []templ.Component {
	return withTeams(s.Teams, append(scoreParts(s.GameState), roundPanel(s.Round, true), leaderboardList("leaderboard", s.Leaderboard, top, "", true)))
}

// withTeams renders every part with the snapshot's team names.
func withTeams(ts game.Teams, parts []templ.Component) []templ.Component {
	for i, p := range parts {
		parts[i] = renderWithTeams(ts, p)
	}
	return parts
}

// LeaderboardParts are the elements of LeaderboardFragments one by one, in
// order, the leaderboard last (PartLeaderboard).
func LeaderboardParts(s game.Snapshot) []templ.Component {
	return withTeams(s.Teams, append(scoreParts(s.GameState), roundPanel(s.Round, true), leaderboardList("leaderboard-full", s.Leaderboard, FullTop, "", true)))
}

// PartLeaderboard is the index of the leaderboard in StateParts and
// LeaderboardParts.
const PartLeaderboard = 7

// scoreParts are the scoreboard's live elements, shared by both pages.
func scoreParts(s game.State) []templ.Component {
	return []templ.Component{
		counter("blue-score", s.BlueScore, true),
		counter("red-score", s.RedScore, true),
		counter("total-taps", s.TotalTaps, true),
		counter("blue-online", s.BlueOnline, true),
		counter("red-online", s.RedOnline, true),
		tugBar(s, true),
	}
}

// maxNameUnits is the join form's maxlength, which browsers count in UTF-16
// code units: one user-perceived character may take 14 (🏴 and the tags of
// a subdivision flag), and the server counts the characters.
const maxNameUnits = 16 * game.MaxNameLen

// FullTop is how many rows the /leaderboard page shows.
const FullTop = 100

// Transport values.
const (
	TransportAuto = "auto"
	TransportWS   = "ws"
	TransportSSE  = "sse"
)

// PageLeaderboard is the page name the /leaderboard page sends as
// ?page=leaderboard on /ws and /events, so that the server streams
// LeaderboardFragments to it instead of StateFragments.
const PageLeaderboard = "leaderboard"

// liveURL is path ("/ws" or "/events"), with ?page= for a page other than
// the game page.
func liveURL(path, page string) string {
	if page == "" {
		return path
	}
	return path + "?page=" + url.QueryEscape(page)
}

// transport normalises t; anything unknown (including "") means auto.
func transport(t string) string {
	switch t {
	case TransportWS, TransportSSE:
		return t
	}
	return TransportAuto
}

func teamClass(t game.Team) string {
	switch t {
	case game.Blue:
		return "team-blue"
	case game.Red:
		return "team-red"
	}
	return "team-none"
}

// teamIcon is the shape shown next to every team colour, so colour is never
// the only cue: a triangle for Blue, a circle for Red.
func teamIcon(t game.Team) string {
	switch t {
	case game.Blue:
		return "▲"
	case game.Red:
		return "●"
	}
	return "◆"
}

// teamLabel is team t's name as the host set it (the teams in ctx).
func teamLabel(ctx context.Context, t game.Team) string {
	if t == "" {
		return "No team"
	}
	return teamsOf(ctx).Name(t)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// rankText is the rank for #my-rank: the number, or an en dash if unranked.
func rankText(rank int) string {
	if rank <= 0 {
		return "–"
	}
	return Number(int64(rank))
}

// entryRank is the rank to show for the i-th (0-based) leaderboard entry.
func entryRank(e game.LeaderboardEntry, i int) string {
	if e.Rank > 0 {
		return strconv.Itoa(e.Rank)
	}
	return strconv.Itoa(i + 1)
}

// topEntries returns the first n entries at most (none if n <= 0).
func topEntries(es []game.LeaderboardEntry, n int) []game.LeaderboardEntry {
	if n <= 0 {
		return nil
	}
	if len(es) > n {
		return es[:n]
	}
	return es
}

// shares returns the rounded whole percentages of both teams (they add to
// 100), for the labels and the bar width.
func shares(s game.State) (blue, red int) {
	share := s.BlueShare()
	if math.IsNaN(share) || share < 0 {
		share = 0
	}
	if share > 100 {
		share = 100
	}
	blue = int(math.Round(share))
	return blue, 100 - blue
}

// tugWidthClass sets the width of #tug-bar in whole percent through a class
// of app.css: the Content-Security-Policy allows no inline styles.
func tugWidthClass(s game.State) string {
	blue, _ := shares(s)
	return "tug__fill--" + strconv.Itoa(blue)
}

func tugLabel(ctx context.Context, s game.State) string {
	b, r := shares(s)
	return "Tug of war: " + teamLabel(ctx, game.Blue) + " " + strconv.Itoa(b) + "%, " + teamLabel(ctx, game.Red) + " " + strconv.Itoa(r) + "%"
}

func pct(n int) string { return strconv.Itoa(n) + "%" }
