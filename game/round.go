package game

// Rounds. Open play (the default) is one count the operator can zero. A
// timed round is logged as a marker on every partition that carries its
// schedule; every instance compares the schedule's instants with its own
// (NTP-synchronised) clock, and a tap's timestamp decides whether it counts:
// the tap handler refuses a tap outside [StartsAt, EndsAt) and the consumer
// counts a tap of a timed round only inside it — the same predicate on the
// same number.

// RoundMode is how a round is played.
type RoundMode string

const (
	ModeOpen  RoundMode = "open"  // one endless count (today's game)
	ModeTimed RoundMode = "timed" // a countdown, a fixed time, a bell
)

// RoundStatus is where a timed round stands at an instant.
type RoundStatus string

const (
	StatusCountdown RoundStatus = "countdown"
	StatusRunning   RoundStatus = "running"
	StatusOver      RoundStatus = "over"
)

// Limits of a timed round's settings (seconds).
const (
	MaxRoundSeconds       = 3600
	MaxCountdownSeconds   = 60
	MaxIntermissionSecond = 3600
)

// RoundSchedule is the plan of a round, as its markers carry it. Times are
// unix milliseconds. An open round has only Number and Mode.
type RoundSchedule struct {
	Number       int64     `json:"number"`
	Mode         RoundMode `json:"mode"`
	CountdownAt  int64     `json:"countdownAt,omitempty"`
	StartsAt     int64     `json:"startsAt,omitempty"`
	EndsAt       int64     `json:"endsAt,omitempty"`
	Repeat       bool      `json:"repeat,omitempty"`
	Intermission int64     `json:"intermissionMs,omitempty"`
}

// Timed reports whether s is a timed round.
func (s *RoundSchedule) Timed() bool { return s != nil && s.Mode == ModeTimed }

// Counts reports whether a tap stamped at ts (unix ms) counts in the round:
// always in open play, inside [StartsAt, EndsAt) in a timed round.
func (s *RoundSchedule) Counts(ts int64) bool {
	if !s.Timed() {
		return true
	}
	return ts >= s.StartsAt && ts < s.EndsAt
}

// Status is where a timed round stands at now (unix ms).
func (s *RoundSchedule) Status(now int64) RoundStatus {
	switch {
	case now < s.StartsAt:
		return StatusCountdown
	case now < s.EndsAt:
		return StatusRunning
	}
	return StatusOver
}

// Next is the schedule of the round that follows s when it repeats: the
// same durations, its start an intermission after s's bell. It depends on s
// alone, so every instance that writes it writes the same markers.
func (s *RoundSchedule) Next() RoundSchedule {
	countdown := s.StartsAt - s.CountdownAt
	starts := s.EndsAt + s.Intermission
	return RoundSchedule{Number: s.Number + 1, Mode: ModeTimed, CountdownAt: starts - countdown,
		StartsAt: starts, EndsAt: starts + (s.EndsAt - s.StartsAt), Repeat: true, Intermission: s.Intermission}
}

// Winner names the team with more taps, or "tie".
func Winner(blue, red int64) string {
	switch {
	case blue > red:
		return string(Blue)
	case red > blue:
		return string(Red)
	}
	return "tie"
}

// RoundResult is the final result of a timed round, logged once it is
// final (a "result" fact); the first one in the log is the result forever.
type RoundResult struct {
	Round     int64             `json:"round"`
	StartsAt  int64             `json:"startsAt"`
	EndsAt    int64             `json:"endsAt"`
	Blue      int64             `json:"blue"`
	Red       int64             `json:"red"`
	Winner    string            `json:"winner"`
	TopTapper *LeaderboardEntry `json:"topTapper"`
	Players   int64             `json:"players"` // players who tapped in the round
}

// RoundState is the "round" object of /api/game-state and the live streams.
type RoundState struct {
	Number   int64       `json:"number"`
	Mode     RoundMode   `json:"mode"`
	Status   RoundStatus `json:"status,omitempty"`
	StartsAt int64       `json:"startsAt,omitempty"`
	EndsAt   int64       `json:"endsAt,omitempty"`
	// NextStartsAt: when the next round of a repeating schedule starts.
	NextStartsAt int64             `json:"nextStartsAt,omitempty"`
	Winner       *string           `json:"winner"`
	Final        bool              `json:"final"`
	Blue         int64             `json:"blue,omitempty"` // final scores, once final
	Red          int64             `json:"red,omitempty"`
	TopTapper    *LeaderboardEntry `json:"topTapper,omitempty"`
}

// State is the round state of s at now, with res its result if logged.
func (s *RoundSchedule) State(now int64, res *RoundResult) RoundState {
	if !s.Timed() {
		n := int64(0)
		if s != nil {
			n = s.Number
		}
		return RoundState{Number: n, Mode: ModeOpen}
	}
	st := RoundState{Number: s.Number, Mode: ModeTimed, Status: s.Status(now), StartsAt: s.StartsAt, EndsAt: s.EndsAt}
	if s.Repeat {
		st.NextStartsAt = s.Next().StartsAt
	}
	if res != nil {
		w := res.Winner
		st.Winner, st.Final, st.Blue, st.Red, st.TopTapper = &w, true, res.Blue, res.Red, res.TopTapper
		st.Status = StatusOver
	}
	return st
}

// NextRound is the round after cur. It is refused (409) once it would
// reach MaxExact, where the Lua scripts could no longer tell it from cur: a
// state an older version let in (imports are bounded by MaxCount).
func NextRound(cur int64) (int64, error) {
	if cur < 0 || cur >= MaxExact-1 {
		return 0, Errorf(ECONFLICT, "the current round (%d) is the last one the game can number exactly (below 2^53): start over with an empty state", cur)
	}
	return cur + 1, nil
}
