package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/tapwars/tapwars/game"
)

// RecordProducer writes records and returns once Kafka acknowledged all of
// them (acks=all, idempotent): stream.Producer.
type RecordProducer interface {
	Produce(ctx context.Context, topic string, recs ...Record) error
	Partitions(topic string) (int32, error)
}

// Facts logs the game's facts to game-taps before the requests that caused
// them are answered, so that the log alone rebuilds the state:
//
//   - joins and kicks are keyed by player id, on the partition of that
//     player's taps (the one pinned in the id, game.PinnedID), so a replay
//     always meets a player's join before their taps and their kick after
//     them;
//   - a round (reset) or an import is a marker on every partition, so each
//     partition sees it at one point: its taps before the marker belong to
//     the old round, those after it to the new one;
//   - an import's players and kicked players follow its markers, keyed by
//     player id.
type Facts struct{ p RecordProducer }

// NewFacts logs facts through p.
func NewFacts(p RecordProducer) *Facts { return &Facts{p: p} }

// importChunk bounds the records of one produce call of an import.
const importChunk = 5000

func factRecord(f game.Fact, key string, partition int32) (Record, error) {
	v, err := EncodeFact(f)
	if err != nil {
		return Record{}, err
	}
	return Record{Key: key, Value: v, Partition: partition, Headers: map[string]string{TypeHeader: string(f.Type)}}, nil
}

func (fs *Facts) keyed(ctx context.Context, facts []game.Fact, key func(game.Fact) string) error {
	for lo := 0; lo < len(facts); lo += importChunk {
		hi := min(lo+importChunk, len(facts))
		recs := make([]Record, 0, hi-lo)
		for _, f := range facts[lo:hi] {
			r, err := factRecord(f, key(f), ByKey)
			if err != nil {
				return err
			}
			recs = append(recs, r)
		}
		if err := fs.p.Produce(ctx, Topic, recs...); err != nil {
			return fmt.Errorf("log %s: %w", facts[lo].Type, err)
		}
	}
	return nil
}

// Join logs a player's join with the id, name, team, session and time the
// join chose.
func (fs *Facts) Join(ctx context.Context, u game.User) error {
	u.TapCount = 0
	return fs.keyed(ctx, []game.Fact{{Type: game.FactJoin, User: &u}}, func(game.Fact) string { return u.ID })
}

// Kick logs a player's kick.
func (fs *Facts) Kick(ctx context.Context, id string, at time.Time) error {
	return fs.keyed(ctx, []game.Fact{{Type: game.FactKick, UserID: id, At: at.UnixMilli()}}, func(game.Fact) string { return id })
}

// markers logs a round or import marker on every partition.
func (fs *Facts) markers(ctx context.Context, f game.Fact) error {
	n, err := fs.p.Partitions(Topic)
	if err != nil {
		return err
	}
	return fs.Mark(ctx, f, 0, n)
}

// Partitions is the number of partitions of game-taps, from fresh metadata.
func (fs *Facts) Partitions() (int32, error) { return fs.p.Partitions(Topic) }

// SetKeyPartitions bounds the hash of unpinned ids (Producer.SetKeyPartitions).
func (fs *Facts) SetKeyPartitions(n int32) {
	if kp, ok := fs.p.(interface{ SetKeyPartitions(int32) }); ok {
		kp.SetKeyPartitions(n)
	}
}

// Mark logs a round or import marker on partitions [from, to).
func (fs *Facts) Mark(ctx context.Context, f game.Fact, from, to int32) error {
	if from >= to {
		return nil
	}
	recs := make([]Record, 0, to-from)
	for p := from; p < to; p++ {
		r, err := factRecord(f, "", p)
		if err != nil {
			return err
		}
		recs = append(recs, r)
	}
	if err := fs.p.Produce(ctx, Topic, recs...); err != nil {
		return fmt.Errorf("log %s %d: %w", f.Type, f.Round, err)
	}
	return nil
}

// Round logs the start of open round on every partition.
func (fs *Facts) Round(ctx context.Context, round int64, at time.Time) error {
	return fs.markers(ctx, game.Fact{Type: game.FactRound, Round: round, At: at.UnixMilli()})
}

// TimedRound logs the start of a timed round on every partition, with
// its schedule: the consumer counts its taps only inside the schedule.
func (fs *Facts) TimedRound(ctx context.Context, sc game.RoundSchedule, at time.Time) error {
	return fs.markers(ctx, game.Fact{Type: game.FactRound, Round: sc.Number, At: at.UnixMilli(), Schedule: &sc})
}

// Result logs the final result of a timed round: one record keyed by
// "round-results", so every result is on one partition and the first for a
// round is the same in every replay.
func (fs *Facts) Result(ctx context.Context, res game.RoundResult) error {
	return fs.Results(ctx, []game.RoundResult{res})
}

// Results logs final results in order, like Result, in as few produce calls
// as importChunk allows.
func (fs *Facts) Results(ctx context.Context, results []game.RoundResult) error {
	facts := make([]game.Fact, len(results))
	for i := range results {
		res := results[i]
		facts[i] = game.Fact{Type: game.FactResult, Round: res.Round, Result: &res}
	}
	return fs.keyed(ctx, facts, func(game.Fact) string { return "round-results" })
}

// Import logs an import that starts round: its markers on every partition,
// then its players (with their tapCount) and kicked players. The state
// before the markers is replaced by these records.
func (fs *Facts) Import(ctx context.Context, round int64, at time.Time, players []game.User, kicked []game.Fact) error {
	if err := fs.markers(ctx, game.Fact{Type: game.FactImport, Round: round, At: at.UnixMilli()}); err != nil {
		return err
	}
	facts := make([]game.Fact, 0, len(players)+len(kicked))
	for i := range players {
		facts = append(facts, game.Fact{Type: game.FactPlayer, User: &players[i]})
	}
	facts = append(facts, kicked...)
	return fs.keyed(ctx, facts, func(f game.Fact) string { return f.User.ID })
}

// Teams logs the teams' names and colours: one record keyed "teams", so
// every change is on one partition and a replay ends on the last one.
func (fs *Facts) Teams(ctx context.Context, ts game.Teams, at time.Time) error {
	return fs.keyed(ctx, []game.Fact{{Type: game.FactTeams, Teams: &ts, At: at.UnixMilli()}}, func(game.Fact) string { return "teams" })
}
