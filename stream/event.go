// Package stream moves tap events through Kafka: the producer that the tap
// handler waits on, and the consumer group that applies batches of taps to
// the store together with their offsets. It is the only package that speaks
// Kafka.
package stream

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/metrics"
)

// Topic is the Kafka topic of tap events (the Next.js game's GAME_TAPS).
const Topic = "game-taps"

// MaxEventBytes is the largest event value the consumer decodes; larger
// values are poison.
const MaxEventBytes = 4 << 10

// Reasons an event is skipped, as metric labels.
const (
	SkipTooLarge  = "too_large"
	SkipMalformed = "malformed"
	SkipNoUser    = "no_user"
	SkipBadCount  = "bad_count"
	SkipUnknown   = "unknown_player"
	SkipKicked    = "kicked_player"
	SkipOldRound  = "old_round"
	SkipOffRound  = "outside_round" // a timed round's tap stamped before its start or after its bell
)

func init() {
	for _, r := range []string{SkipTooLarge, SkipMalformed, SkipNoUser, SkipBadCount, SkipUnknown, SkipKicked, SkipOldRound, SkipOffRound} {
		metrics.TapsSkipped.WithLabelValues(r) // shown as 0 from the start
	}
}

// errIsFact says that a record without a type header is a fact after all.
var errIsFact = errors.New("the record is a fact, not a tap")

// DecodeError says why an event value is not a valid tap event.
type DecodeError struct {
	Reason string
	Err    error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("tap event %s: %v", e.Reason, e.Err) }
func (e *DecodeError) Unwrap() error { return e.Err }

// DecodeEvent parses and validates a tap event value. Any producer may have
// written it (this app, kcat, the old Next.js game), so it trusts nothing:
// the value must be a JSON object with a userId, and count, when present,
// must be 1..game.MaxBurst. The team in the event is ignored by the consumer.
func DecodeEvent(value []byte) (game.TapEvent, error) {
	var ev game.TapEvent
	if len(value) > MaxEventBytes {
		return ev, &DecodeError{SkipTooLarge, fmt.Errorf("%d bytes (limit %d)", len(value), MaxEventBytes)}
	}
	// Records as this app writes them are read without reflection; the
	// rest (and any that would be refused, for the reason) go through
	// encoding/json, which the fast path agrees with.
	if ev, ok := game.ReadTapEvent(value); ok && ev.UserID != "" && len(ev.UserID) <= 64 && ev.Count >= 0 && ev.Count <= game.MaxBurst {
		ev.Count = ev.Taps()
		return ev, nil
	}
	return decodeEventJSON(value)
}

// decodeEventJSON is DecodeEvent with encoding/json, for any layout.
func decodeEventJSON(value []byte) (game.TapEvent, error) {
	var ev game.TapEvent
	var raw struct {
		game.TapEvent
		Count *json.Number `json:"count"`
		Type  string       `json:"type"`
	}
	if err := json.Unmarshal(value, &raw); err != nil {
		return ev, &DecodeError{SkipMalformed, err}
	}
	ev = raw.TapEvent
	if raw.Type != "" {
		return ev, errIsFact
	}
	if ev.UserID == "" || len(ev.UserID) > 64 {
		return ev, &DecodeError{SkipNoUser, errors.New("userId missing or longer than 64 bytes")}
	}
	ev.Count = 1
	if raw.Count != nil {
		n, err := raw.Count.Int64()
		if err != nil || n < 1 || n > game.MaxBurst {
			return ev, &DecodeError{SkipBadCount, fmt.Errorf("count %s not in 1..%d", raw.Count.String(), game.MaxBurst)}
		}
		ev.Count = int(n)
	}
	return ev, nil
}

// EncodeEvent is the JSON value of an event as the producer writes it
// (json.Marshal's bytes); the error is always nil.
func EncodeEvent(ev game.TapEvent) ([]byte, error) {
	return ev.AppendJSON(make([]byte, 0, 256)), nil
}

// TypeHeader is the record header that names a fact's type (the JSON value
// carries it too); a record without it and without a "type" field is a tap.
const TypeHeader = "type"

// DecodeFact parses and validates a fact value (see game.Fact). Like taps,
// a bad fact is poison: skipped and counted, never stalling the partition.
func DecodeFact(value []byte) (game.Fact, error) {
	var f game.Fact
	if len(value) > MaxEventBytes {
		return f, &DecodeError{SkipTooLarge, fmt.Errorf("%d bytes (limit %d)", len(value), MaxEventBytes)}
	}
	if err := json.Unmarshal(value, &f); err != nil {
		return f, &DecodeError{SkipMalformed, err}
	}
	bad := func(format string, a ...any) (game.Fact, error) {
		return f, &DecodeError{SkipMalformed, fmt.Errorf("%s fact: "+format, append([]any{f.Type}, a...)...)}
	}
	switch f.Type {
	case game.FactJoin, game.FactPlayer, game.FactKicked:
		u := f.User
		if u == nil || u.ID == "" || len(u.ID) > 64 || !u.Team.Valid() || u.Username == "" || u.TapCount < 0 {
			return bad("user with id, username and team required")
		}
	case game.FactKick:
		if f.UserID == "" || len(f.UserID) > 64 {
			return bad("userId missing or longer than 64 bytes")
		}
	case game.FactRound, game.FactImport:
		if f.Round < 1 {
			return bad("round must be at least 1")
		}
		if sc := f.Schedule; sc != nil && (sc.Number != f.Round || sc.Mode != game.ModeTimed ||
			sc.CountdownAt > sc.StartsAt || sc.StartsAt >= sc.EndsAt || sc.Intermission < 0) {
			return bad("schedule must be a timed round's, of this round, with countdownAt <= startsAt < endsAt")
		}
	case game.FactResult:
		if r := f.Result; r == nil || r.Round < 1 || r.Blue < 0 || r.Red < 0 || r.Winner != game.Winner(r.Blue, r.Red) {
			return bad("result with round, scores and the winner they give required")
		}
	case game.FactTeams:
		if f.Teams == nil {
			return bad("teams required")
		}
		ts, err := game.NormalizeTeams(*f.Teams)
		if err != nil {
			return bad("%s", game.ErrorMessage(err))
		}
		f.Teams = &ts
	default:
		return bad("unknown type")
	}
	return f, nil
}

// EncodeFact is the JSON value of a fact.
func EncodeFact(f game.Fact) ([]byte, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode %s fact: %w", f.Type, err)
	}
	return b, nil
}
