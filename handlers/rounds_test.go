package handlers

import (
	"errors"
	"strings"
	"testing"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/ledger"
)

// The tap rule on every state of a round, as a view holds it.
func TestRoundRule(t *testing.T) {
	timed := &game.RoundSchedule{Number: 4, Mode: game.ModeTimed, CountdownAt: 1000, StartsAt: 6000, EndsAt: 16000}
	repeat := *timed
	repeat.Repeat, repeat.Intermission = true, 5000
	for _, c := range []struct {
		name  string
		hold  ledger.RoundHold
		now   int64
		want  string // "" = accepted
		retry int
	}{
		{"open play", ledger.RoundHold{Round: 3}, 500, "", 0},
		{"countdown", ledger.RoundHold{Schedule: timed, Round: 4}, 2000, "it starts in 4 s", 4},
		{"announced, in its countdown", ledger.RoundHold{Schedule: timed, Round: 3}, 2000, "it starts in 4 s", 4},
		{"announced, start time passed, not started", ledger.RoundHold{Schedule: timed, Round: 3}, 7000, "the round is starting", 1},
		{"in play", ledger.RoundHold{Schedule: timed, Round: 4}, 6000, "", 0},
		{"last millisecond", ledger.RoundHold{Schedule: timed, Round: 4}, 15999, "", 0},
		{"the bell", ledger.RoundHold{Schedule: timed, Round: 4}, 16000, "starts when the host starts it", 0},
		{"the bell, repeating", ledger.RoundHold{Schedule: &repeat, Round: 4}, 16000, "the next one starts in 5 s", 5},
	} {
		err := roundRule(c.hold, c.now)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || game.ErrorCode(err) != game.ECONFLICT):
			t.Errorf("%s: %v, want 409 %q", c.name, err, c.want)
		case c.want != "":
			var ge *game.Error
			if !errors.As(err, &ge) || ge.RetryAfter != c.retry {
				t.Errorf("%s: %#v, want Retry-After %d", c.name, err, c.retry)
			}
		}
	}
}
