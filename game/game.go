// Package game holds the domain types of tapwars: players, teams, tap events
// and the game state that every other package speaks about. It has no
// dependencies on Redis, Kafka or HTTP.
package game

// Team is one of the two sides.
type Team string

const (
	Blue Team = "blue"
	Red  Team = "red"
)

// Valid reports whether t is blue or red.
func (t Team) Valid() bool { return t == Blue || t == Red }

// Label is the human name of the team, used beside the colour so that colour
// is never the only signal.
func (t Team) Label() string {
	switch t {
	case Blue:
		return "Blue"
	case Red:
		return "Red"
	}
	return string(t)
}

// User is a player. Its JSON shape is the one the Next.js game stored in the
// game:users hash and returned from /api/join; tapCount is kept current.
type User struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	Team      Team   `json:"team"`
	JoinedAt  int64  `json:"joinedAt"` // unix milliseconds
	SessionID string `json:"sessionId"`
	TapCount  int64  `json:"tapCount"`
}

// TapEvent is the value written to the game-taps topic. The first six fields
// are the old game's TapEvent; Count (1..MaxBurst, absent means 1) is ours.
type TapEvent struct {
	ID        string `json:"id"`
	UserID    string `json:"userId"`
	Username  string `json:"username"`
	Team      Team   `json:"team"`
	Timestamp int64  `json:"timestamp"` // unix milliseconds
	SessionID string `json:"sessionId"`
	Count     int    `json:"count,omitempty"`
	Round     int64  `json:"round,omitempty"`
}

// MaxBurst is the largest count one tap request (and one event) may carry.
const MaxBurst = 50

// MaxIDLen is the longest player (and session) id: the token format's limit.
const MaxIDLen = 64

// ValidID reports whether id is a player or session id: 1 to MaxIDLen
// characters of a-z, A-Z, 0-9, '-' or '_' (safe in tokens, keys and URLs).
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// MaxCount is the largest number the game takes in from outside (a count,
// a round, an offset or a time in an import): 10^15. Redis' Lua scripts and
// the leaderboard (a sorted set) hold numbers as doubles, exact only below
// MaxExact (about 9×10^15), so what the game adds after (taps, the next
// rounds) stays exact.
const MaxCount = 1_000_000_000_000_000

// MaxExact is 2^53: doubles hold every whole number below it exactly, and
// no number the game stores may reach it.
const MaxExact = 1 << 53

// Taps returns how many taps the event stands for.
func (e TapEvent) Taps() int {
	if e.Count == 0 {
		return 1
	}
	return e.Count
}

// State is the scoreboard part of /api/game-state.
type State struct {
	BlueScore   int64 `json:"blueScore"`
	RedScore    int64 `json:"redScore"`
	TotalTaps   int64 `json:"totalTaps"`
	ActiveUsers int64 `json:"activeUsers"`
	LastUpdated int64 `json:"lastUpdated"` // unix milliseconds
	BlueOnline  int64 `json:"blueOnline"`
	RedOnline   int64 `json:"redOnline"`
	Round       int64 `json:"round"`
}

// LeaderboardEntry is one row of the leaderboard.
type LeaderboardEntry struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Team     Team   `json:"team"`
	TapCount int64  `json:"tapCount"`
	Rank     int    `json:"rank"`
}

// Player is a player as any viewer of the public state sees them: a
// session id and join time are nobody else's business.
type Player struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Team     Team   `json:"team"`
	TapCount int64  `json:"tapCount"`
}

// Public is what every viewer may know of u.
func (u User) Public() Player {
	return Player{ID: u.ID, Username: u.Username, Team: u.Team, TapCount: u.TapCount}
}

// Snapshot is the whole /api/game-state document: public to anyone.
type Snapshot struct {
	GameState   State              `json:"gameState"`
	Users       []Player           `json:"users"`
	Leaderboard []LeaderboardEntry `json:"leaderboard"`
	Round       RoundState         `json:"round"`
	// Teams is how the teams are shown (names and colours the host set);
	// the ids stay "blue" and "red" everywhere else.
	Teams Teams `json:"teams"`
	// Schedule is the current round's plan (nil: open play), for the tap
	// rule; pages and clients read Round.
	Schedule *RoundSchedule `json:"-"`
}

// BlueShare is blue's share of all taps in percent (50 when nobody tapped).
func (s State) BlueShare() float64 {
	total := s.BlueScore + s.RedScore
	if total <= 0 {
		return 50
	}
	return float64(s.BlueScore) * 100 / float64(total)
}

// Domain errors (see errors.go). handlers maps their codes to HTTP
// statuses in one place.
var (
	ErrUnknownPlayer = Errorf(ENOTFOUND, "unknown player")
	// ErrNotReplayed is an unknown player of a projection that is empty or
	// being rebuilt from the log, which may well hold their join.
	ErrNotReplayed  = &Error{Code: ENOTFOUND, Message: "unknown player: the game state is being rebuilt from the log", Err: ErrUnknownPlayer}
	ErrInvalidCount = Errorf(EINVALID, "count must be a whole number from 1 to %d", MaxBurst)
	// ErrUnavailable is a dependency that did not answer in time (stream
	// wraps Kafka's outages in it; store classifies Redis' own).
	ErrUnavailable = Errorf(EUNAVAILABLE, "the game is temporarily unavailable (its message broker or store did not answer in time); please try again in a moment")
)

// PlayerTaps is the number of taps one player made within a batch.
type PlayerTaps struct {
	UserID string
	Count  int64
}

// Batch is a run of consecutive records of one topic partition that is
// applied to the store atomically together with the partition's next
// offset. Its steps are applied in log order; Taps, when set, is a tap run
// before them.
type Batch struct {
	Topic     string
	Partition int32
	From      int64 // offset of the first record in the batch
	Next      int64 // offset after the last record (the offset to resume from)
	// Start says that From is where the partition's log begins (or the
	// first offset still kept), so a projection that holds nothing of the
	// partition may begin with this batch.
	Start bool
	Taps  []PlayerTaps
	Steps []Step
	Now   int64 // unix milliseconds, passed in so that scripts are deterministic
}

// ApplyStatus says what the store did with a batch.
type ApplyStatus int

const (
	Applied   ApplyStatus = iota // the batch was applied
	Duplicate                    // every record was applied before: nothing changed
	Overlap                      // some records were applied before: refilter from Offset
	_                            // (was: new round; rounds are log records now)
	Behind                       // the store lacks records before From (lost, e.g. FLUSHALL): replay from Offset (-1: from the start)
)

// ApplyResult is the outcome of applying a batch.
type ApplyResult struct {
	Status   ApplyStatus
	Applied  int64 // taps counted
	Unknown  int64 // taps of players the store does not know (nor kicked): the store lost them
	Kicked   int64 // taps of kicked players (after their kick in the log)
	OldRound int64 // taps of a round that had ended when they were applied
	Offset   int64 // the partition's stored next offset (Overlap, Duplicate, Behind; -1: none)
	// Schedule (Applied) is the schedule of the partition's round after the
	// batch, as the store holds it: the one its next batch counts taps by.
	Schedule *RoundSchedule
}

// PlayerStats is a player's taps this round and 1-based rank (0 when not ranked).
type PlayerStats struct {
	Taps int64
	Rank int   // 1 + players with more taps (ties share a rank); 0 = not ranked
	Of   int64 // players ranked
}
