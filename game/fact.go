package game

// Facts are the records of the game-taps log other than taps: everything the
// state depends on goes through the log, so Redis can be rebuilt from it.
// A record whose type is empty is a tap (the old game's and kcat's records
// carry no type).

// FactType names a kind of record in the log.
type FactType string

const (
	FactTap    FactType = ""       // a tap (TapEvent)
	FactJoin   FactType = "join"   // a player joined, with the team the join chose
	FactKick   FactType = "kick"   // a player was removed by the operator
	FactRound  FactType = "round"  // a new round: one marker on every partition
	FactImport FactType = "import" // an import replaced the state: one marker on every partition, then its players
	FactPlayer FactType = "player" // a player of an import, with their tapCount
	FactKicked FactType = "kicked" // a kicked player of an import
	FactResult FactType = "result" // the final result of a timed round (keyed, one record)
	FactTeams  FactType = "teams"  // the teams' names and colours the host set (keyed, one record)
)

// Fact is a non-tap record of the log. Which fields are set depends on Type.
type Fact struct {
	Type FactType `json:"type"`
	// User: join (tapCount 0), player (tapCount of the import), kicked.
	User *User `json:"user,omitempty"`
	// UserID: kick.
	UserID string `json:"userId,omitempty"`
	// Round: round and import markers (the round they start).
	Round int64 `json:"round,omitempty"`
	// At is when the fact happened (unix ms): kick time, reset time.
	At int64 `json:"at,omitempty"`
	// RemovedTaps: kicked (as the import file says).
	RemovedTaps int64 `json:"removedTaps,omitempty"`
	// Schedule: round markers of a timed round (absent: open play).
	Schedule *RoundSchedule `json:"schedule,omitempty"`
	// Result: result.
	Result *RoundResult `json:"result,omitempty"`
	// Teams: teams (how both teams are shown from now on).
	Teams *Teams `json:"teams,omitempty"`
}

// Step is one step of a batch, applied in log order: either a run of
// consecutive taps aggregated per player, or one fact.
type Step struct {
	Taps   []PlayerTaps
	Fact   *Fact
	Offset int64 // the fact's offset (round and import markers record it as the round start)
}
