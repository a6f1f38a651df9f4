package views

import (
	"strconv"

	"github.com/tapwars/tapwars/game"
)

// consoleState is the round's state for the host console, as a class
// suffix: "open", "countdown", "playing", "counting" (after the bell, until
// the result is final) or "final".
func consoleState(c AdminConsole) string {
	r := c.Round
	if r.Mode != game.ModeTimed {
		return "open"
	}
	if r.Final {
		return "final"
	}
	now := c.Now.UnixMilli()
	switch {
	case now < r.StartsAt:
		return "countdown"
	case now < r.EndsAt:
		return "playing"
	}
	return "counting"
}

func consoleStateText(c AdminConsole) string {
	switch consoleState(c) {
	case "countdown":
		return "Countdown"
	case "playing":
		return "Playing"
	case "counting":
		return "Time! Counting the last taps"
	case "final":
		return "Final"
	}
	return "Open play"
}

// consoleClock is the time line under the state: what happens next and
// when, always true of the state shown.
func consoleClock(c AdminConsole) string {
	r, now := c.Round, c.Now.UnixMilli()
	switch consoleState(c) {
	case "countdown":
		return "Starts in " + minSec(r.StartsAt-now)
	case "playing":
		return minSec(r.EndsAt-now) + " left"
	case "counting":
		return "The bell has rung; the result follows in a moment."
	case "final":
		if r.NextStartsAt > now {
			return "Next round in " + minSec(r.NextStartsAt-now)
		}
		return "Round over. Start another when you are ready."
	}
	return "Everyone taps, one endless count. Start a timed round below."
}

// minSec is ms as m:ss, rounded up (as the pages' clocks show it).
func minSec(ms int64) string {
	s := max(0, (ms+999)/1000)
	sec := s % 60
	pad := ""
	if sec < 10 {
		pad = "0"
	}
	return strconv.FormatInt(s/60, 10) + ":" + pad + strconv.FormatInt(sec, 10)
}
