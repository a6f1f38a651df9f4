package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/tapwars/tapwars/game"
)

// applyScript applies a batch of one partition in log order and stores the
// partition's next offset in the same atomic step. It refuses a batch whose
// records were (partly) applied before, or that does not follow what the
// store holds of the partition (Behind: the store lost records, e.g. after
// FLUSHALL), and says which, so the caller can refilter or replay. Taps of
// unknown players are skipped and reported. The team always comes from the
// stored user, never from the event.
//
// KEYS: see lua/apply.lua's first line.
// ARGV: offset field, from, next, start ('1': the store may begin here), now,
// then steps, each an opcode (opTaps, ...) and its arguments.
//
// Returns what applyReply reads.
var applyScript = newLuaScript("apply.lua", "new_round.lua", "names.lua")

// Apply applies a batch atomically with its offsets. See game.ApplyStatus
// for the outcomes other than Applied; none of them changes anything.
func (s *Store) Apply(ctx context.Context, b game.Batch) (game.ApplyResult, error) {
	start := "0"
	if b.Start {
		start = "1"
	}
	args := make([]any, 0, 8+2*len(b.Taps)+4*len(b.Steps))
	args = append(args, OffsetField(b.Topic, b.Partition), b.From, b.Next, start, b.Now)
	if len(b.Taps) > 0 {
		args = appendTaps(args, b.Taps)
	}
	for _, st := range b.Steps {
		var err error
		if args, err = appendStep(args, st); err != nil {
			return game.ApplyResult{}, err
		}
	}
	res, err := applyScript.Run(ctx, s.rdb, applyScript.Keys(b.Now), args...).Slice()
	if err != nil {
		return game.ApplyResult{}, fmt.Errorf("apply %s [%d,%d): %w", OffsetField(b.Topic, b.Partition), b.From, b.Next, err)
	}
	return applyReply(res)
}

// applyReply reads applyScript's reply: {status, applied, unknown, old
// round, offset}, and when applied also kicked, the partition's round and
// its schedule (empty in open play).
func applyReply(res []any) (game.ApplyResult, error) {
	if len(res) != 5 && len(res) != 8 {
		return game.ApplyResult{}, fmt.Errorf("apply: unexpected reply %v", res)
	}
	var n [7]int64
	for i := range min(len(res), 7) {
		v, ok := res[i].(int64)
		if !ok {
			return game.ApplyResult{}, fmt.Errorf("apply: unexpected reply %v", res)
		}
		n[i] = v
	}
	r := game.ApplyResult{Status: game.ApplyStatus(n[0]), Applied: n[1], Unknown: n[2], OldRound: n[3], Offset: n[4], Kicked: n[5]}
	if len(res) == 8 {
		raw, _ := res[7].(string)
		sc, err := partSchedule(raw, n[6])
		if err != nil {
			return game.ApplyResult{}, err
		}
		r.Schedule = &sc
	}
	return r, nil
}

func appendTaps(args []any, taps []game.PlayerTaps) []any {
	args = append(args, opTaps, len(taps))
	for _, t := range taps {
		args = append(args, t.UserID, strconv.FormatInt(t.Count, 10))
	}
	return args
}

// appendStep encodes one step for applyScript.
func appendStep(args []any, st game.Step) ([]any, error) {
	f := st.Fact
	if f == nil {
		return appendTaps(args, st.Taps), nil
	}
	switch f.Type {
	case game.FactJoin, game.FactPlayer:
		u := *f.User
		n := u.TapCount
		if f.Type == game.FactJoin {
			u.TapCount, n = 0, 0
		}
		raw, err := json.Marshal(u)
		if err != nil {
			return nil, fmt.Errorf("encode player: %w", err)
		}
		op := opJoin
		last := any(u.JoinedAt)
		if f.Type == game.FactPlayer {
			op, last = opPlayer, n
		}
		return append(args, op, u.ID, string(raw), string(u.Team), last, nameKeysArg(u.Username)), nil
	case game.FactKick:
		return append(args, opKick, f.UserID, f.At), nil
	case game.FactRound:
		sched := ""
		if f.Schedule != nil {
			raw, err := json.Marshal(f.Schedule)
			if err != nil {
				return nil, fmt.Errorf("encode schedule: %w", err)
			}
			sched = string(raw)
		}
		return append(args, opRound, f.Round, st.Offset, sched), nil
	case game.FactResult:
		raw, err := json.Marshal(f.Result)
		if err != nil {
			return nil, fmt.Errorf("encode result: %w", err)
		}
		return append(args, opResult, f.Result.Round, string(raw)), nil
	case game.FactImport:
		return append(args, opImport, f.Round, st.Offset), nil
	case game.FactTeams:
		raw, err := json.Marshal(f.Teams)
		if err != nil {
			return nil, fmt.Errorf("encode teams: %w", err)
		}
		return append(args, opTeams, string(raw)), nil
	case game.FactKicked:
		raw, err := json.Marshal(KickRecord{User: *f.User, KickedAt: f.At, RemovedTaps: f.RemovedTaps})
		if err != nil {
			return nil, fmt.Errorf("encode kick record: %w", err)
		}
		return append(args, opKicked, f.User.ID, string(raw)), nil
	}
	return nil, fmt.Errorf("apply: unknown fact type %q", f.Type)
}
