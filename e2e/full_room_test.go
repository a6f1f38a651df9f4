package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tapwars/tapwars/store"
)

// roomSize is an event's room: more players than the lobby or the top 5 show.
const roomSize = 45

// A room of 45 players with long names and the host's long team names, the lobby and then 6- and 7-digit
// scores: the presenter screen fits at every projector size (the lobby
// counts all 45 and shows whole names only; the board its top 5), and the
// phone's /leaderboard lists all 45 rows with every number on one line
// inside its box and room for each name at 320–430 px. Screenshots screen-lobby-45-*,
// screen-room-45-* and leaderboard-45-*.
func TestFullRoomOnTheBoard(t *testing.T) {
	e := newPhoneEnv(t, nil)
	e.setTeams(`{"blue":{"name":"Clever Cats","color":"#6d28d9"},"red":{"name":"Dogs of Thunder","color":"#0f766e"}}`)
	browser := newBrowser(t)
	ann := newPlayer(t, browser, "Annabelle Longname")
	ann.join(e.base, "/")
	for i := range roomSize - 1 {
		e.apiJoin(fmt.Sprintf("Maximiliana Thunder %02d", i))
	}
	screen := newPlayer(t, browser, "screen")
	screen.do(chromedp.EmulateViewport(1920, 1080), chromedp.Navigate(e.base+"/screen"), chromedp.WaitVisible(chromedp.CSS(".screen__qr svg")))
	screen.waitConnected(10*time.Second, "live")
	projectors := []struct {
		name string
		w, h int64
	}{{"1920", 1920, 1080}, {"1280", 1280, 720}, {"1024", 1024, 768}}
	for _, sz := range projectors {
		screen.do(chromedp.EmulateViewport(sz.w, sz.h))
		time.Sleep(800 * time.Millisecond) // a name's entrance lasts 0.6 s
		if got := eval[string](screen, `document.querySelector('.lobby__title').textContent`); got != fmt.Sprintf("%d players here", roomSize) {
			t.Errorf("%dx%d: the lobby says %q", sz.w, sz.h, got)
		}
		if bad := screen.fitProblems(); len(bad) > 0 {
			t.Errorf("the lobby at %dx%d:\n  %s", sz.w, sz.h, strings.Join(bad, "\n  "))
		}
		screen.screenshot("screen-lobby-45-"+sz.name, sz.w, sz.h, false)
	}

	// Scores: the top player 777,777, each next one 17,000 fewer; each
	// team's total stays within 7 digits.
	var ex store.Export
	if err := json.Unmarshal(e.admin("GET", "/admin/export", nil), &ex); err != nil {
		t.Fatal(err)
	}
	if len(ex.Players) != roomSize {
		t.Fatalf("%d players in the export, want %d", len(ex.Players), roomSize)
	}
	for i := range ex.Players {
		ex.Players[i].TapCount = 777_777 - int64(i)*17_000
	}
	e.importState(ex.Players)

	for _, sz := range projectors {
		screen.do(chromedp.EmulateViewport(sz.w, sz.h))
		time.Sleep(500 * time.Millisecond) // the tug bar animates; screen.js fits every 200 ms
		if lobby := eval[bool](screen, `!document.getElementById('screen-lobby').hidden`); lobby {
			t.Errorf("%dx%d: the lobby shows over a game with taps", sz.w, sz.h)
		}
		if n := eval[int](screen, `[...document.querySelectorAll('#leaderboard li[data-player-id]')].filter(li => li.offsetParent).length`); n != 5 {
			t.Errorf("%dx%d: the board shows %d rows, want the top 5", sz.w, sz.h, n)
		}
		if bad := screen.fitProblems(); len(bad) > 0 {
			t.Errorf("the board at %dx%d:\n  %s", sz.w, sz.h, strings.Join(bad, "\n  "))
		}
		screen.screenshot("screen-room-45-"+sz.name, sz.w, sz.h, false)
	}

	ann.do(chromedp.Navigate(e.base + "/leaderboard"))
	ann.waitConnected(10*time.Second, "live")
	for _, w := range phoneWidths {
		ann.asPhone(w, 800)
		if n := eval[int](ann, `document.querySelectorAll('#leaderboard-full li[data-player-id]').length`); n != roomSize {
			t.Errorf("/leaderboard at %d px lists %d players, want %d", w, n, roomSize)
		}
		if bad := eval[[]string](ann, numberLayoutJS); len(bad) > 0 {
			t.Errorf("/leaderboard at %d px: %s", w, strings.Join(bad, "; "))
		}
		// A player's name keeps room beside a host's long team name and a
		// 6-digit count: at least 60 px, five letters or so.
		if narrow := eval[float64](ann, `Math.min(...[...document.querySelectorAll('#leaderboard-full .board__name')].map(e => e.getBoundingClientRect().width))`); narrow < 60 {
			t.Errorf("/leaderboard at %d px: a player's name has %.0f px", w, narrow)
		}
		eval[bool](ann, `(() => { document.getElementById('leaderboard-full').scrollIntoView(); return true; })()`)
		ann.shot(fmt.Sprintf("leaderboard-45-%d", w))
	}
}
