package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/game"
)

// decodeSchedule reads a stored schedule; "" or absent is open play (nil).
func decodeSchedule(raw string) (*game.RoundSchedule, error) {
	if raw == "" {
		return nil, nil
	}
	var sc game.RoundSchedule
	if err := json.Unmarshal([]byte(raw), &sc); err != nil {
		return nil, fmt.Errorf("read round schedule: %w", err)
	}
	return &sc, nil
}

func getString(ctx context.Context, cmd *redis.StringCmd) (string, error) {
	v, err := cmd.Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}

// AnnounceRound makes sc the current schedule before its markers are
// logged and tells every instance: each one then refuses taps until the
// round has started (ledger.RoundView), and records that it switched
// (Unseen); StartRound follows.
func (s *Store) AnnounceRound(ctx context.Context, sc game.RoundSchedule) error {
	raw, err := json.Marshal(sc)
	if err != nil {
		return fmt.Errorf("encode schedule: %w", err)
	}
	if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, KeyRoundSchedule, raw, 0)
		p.Publish(ctx, ChannelRounds, sc.Number)
		return nil
	}); err != nil {
		return fmt.Errorf("announce round %d: %w", sc.Number, err)
	}
	return nil
}

// WithdrawRound undoes AnnounceRound when the round's markers could not be
// logged (the round never started), unless the schedule changed since.
func (s *Store) WithdrawRound(ctx context.Context, sc game.RoundSchedule) error {
	cur, err := s.RoundSchedule(ctx)
	if err != nil || cur == nil || *cur != sc {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, KeyRoundSchedule)
		p.Publish(ctx, ChannelRounds, sc.Number)
		return nil
	})
	return err
}

// roundViewScript is an instance's heartbeat (RoundHeartbeat).
var roundViewScript = newLuaScript("round_view.lua")

// ViewState is what an instance's view is made of: the current round,
// its schedule (nil in open play; a timed schedule numbered after Round is
// announced, not started) and the kick epoch (PendKick).
type ViewState struct {
	Round    int64
	Schedule *game.RoundSchedule
	Kicks    int64
}

// Seen is the view an instance has switched to: its stamp (see
// ledger.RoundView) and kick epoch.
type Seen struct{ Stamp, Kicks int64 }

// RoundHeartbeat registers instance id until lease after now (Redis
// time) with seen, the newest view it has switched to, and reads the
// state its view is made of.
func (s *Store) RoundHeartbeat(ctx context.Context, id string, lease time.Duration, seen Seen) (ViewState, error) {
	mark := strconv.FormatInt(seen.Stamp, 10) + "/" + strconv.FormatInt(seen.Kicks, 10)
	vals, err := roundViewScript.Run(ctx, s.rdb, roundViewScript.Keys(0), id, lease.Milliseconds(), mark).StringSlice()
	if err != nil {
		return ViewState{}, fmt.Errorf("read round: %w", err)
	}
	if len(vals) != 3 {
		return ViewState{}, fmt.Errorf("read round: %d values", len(vals))
	}
	var v ViewState
	v.Round, _ = strconv.ParseInt(vals[0], 10, 64)
	v.Kicks, _ = strconv.ParseInt(vals[2], 10, 64)
	v.Schedule, err = decodeSchedule(vals[1])
	return v, err
}

// roundUnseenScript lists the instances behind a view (RoundUnseen).
var roundUnseenScript = newLuaScript("round_unseen.lua")

// RoundUnseen is the registered instances that have not switched to a
// view at least as new as seen (see RoundHeartbeat).
func (s *Store) RoundUnseen(ctx context.Context, seen Seen) ([]string, error) {
	ids, err := roundUnseenScript.Run(ctx, s.rdb, roundUnseenScript.Keys(0), seen.Stamp, seen.Kicks).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read the instances' views of the round: %w", err)
	}
	return ids, nil
}

// LeaveRounds ends instance id's registration: announcements no longer
// wait for it.
func (s *Store) LeaveRounds(ctx context.Context, id string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, KeyRoundViews, id)
		p.HDel(ctx, KeyRoundSeen, id)
		return nil
	})
	return err
}

// SubscribeRounds signals whenever the current round changed (see
// subscribe).
func (s *Store) SubscribeRounds(ctx context.Context) <-chan struct{} {
	return s.subscribe(ctx, ChannelRounds)
}

// RoundSchedule is the current round's schedule, nil in open play.
func (s *Store) RoundSchedule(ctx context.Context) (*game.RoundSchedule, error) {
	raw, err := getString(ctx, s.rdb.Get(ctx, KeyRoundSchedule))
	if err != nil {
		return nil, fmt.Errorf("read round schedule: %w", err)
	}
	return decodeSchedule(raw)
}

// PartitionSchedule is the schedule of the round a partition's next record
// belongs to (an open one with the partition's round number in open play):
// the consumer counts that partition's taps with it until the partition's
// next round marker.
func (s *Store) PartitionSchedule(ctx context.Context, topic string, partition int32) (game.RoundSchedule, error) {
	field := OffsetField(topic, partition)
	var raw, round *redis.StringCmd
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		raw = p.HGet(ctx, KeyRoundPartSchedules, field)
		round = p.HGet(ctx, KeyRoundParts, field)
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return game.RoundSchedule{}, fmt.Errorf("read round schedule of %s: %w", field, err)
	}
	n, _ := strconv.ParseInt(round.Val(), 10, 64)
	return partSchedule(raw.Val(), n)
}

// partSchedule is a partition's round schedule from its stored fields:
// raw (empty in open play) and the partition's round.
func partSchedule(raw string, round int64) (game.RoundSchedule, error) {
	sc, err := decodeSchedule(raw)
	if err != nil || sc == nil {
		return game.RoundSchedule{Number: round, Mode: game.ModeOpen}, err
	}
	return *sc, nil
}

// RoundResult is round's final result, nil if none was logged (yet).
func (s *Store) RoundResult(ctx context.Context, round int64) (*game.RoundResult, error) {
	raw, err := getString(ctx, s.rdb.HGet(ctx, KeyRoundResults, strconv.FormatInt(round, 10)))
	if err != nil || raw == "" {
		return nil, err
	}
	var res game.RoundResult
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		return nil, fmt.Errorf("read result of round %d: %w", round, err)
	}
	return &res, nil
}

// RoundResults is a page of the round history, newest first, and how many
// rounds it holds in all.
func (s *Store) RoundResults(ctx context.Context, offset, limit int64) ([]game.RoundResult, int64, error) {
	var (
		ids   *redis.StringSliceCmd
		total *redis.IntCmd
	)
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		ids = p.ZRevRange(ctx, KeyRounds, offset, offset+limit-1)
		total = p.ZCard(ctx, KeyRounds)
		return nil
	}); err != nil {
		return nil, 0, fmt.Errorf("read round history: %w", err)
	}
	out := make([]game.RoundResult, 0, len(ids.Val()))
	if len(ids.Val()) == 0 {
		return out, total.Val(), nil
	}
	raws, err := s.rdb.HMGet(ctx, KeyRoundResults, ids.Val()...).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("read round history: %w", err)
	}
	for _, raw := range raws {
		str, ok := raw.(string)
		if !ok {
			continue
		}
		var res game.RoundResult
		if err := json.Unmarshal([]byte(str), &res); err != nil {
			return nil, 0, fmt.Errorf("read round history: %w", err)
		}
		out = append(out, res)
	}
	return out, total.Val(), nil
}

// Tally reads, in one atomic step, the current round, its scores, its top
// tapper and how many players tapped: the numbers of a result.
func (s *Store) Tally(ctx context.Context) (game.RoundResult, error) {
	var (
		vals *redis.SliceCmd
		top  *redis.ZSliceCmd
		n    *redis.IntCmd
	)
	if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		vals = p.MGet(ctx, KeyRound, KeyBlueScore, KeyRedScore)
		top = p.ZRevRangeWithScores(ctx, KeyLeaderboard, 0, 0)
		n = p.ZCard(ctx, KeyLeaderboard)
		return nil
	}); err != nil {
		return game.RoundResult{}, fmt.Errorf("read round tally: %w", err)
	}
	v := vals.Val()
	res := game.RoundResult{Round: atoi(v[0]), Blue: atoi(v[1]), Red: atoi(v[2]), Players: n.Val()}
	res.Winner = game.Winner(res.Blue, res.Red)
	if z := top.Val(); len(z) == 1 {
		id := z[0].Member.(string)
		e := game.LeaderboardEntry{ID: id, TapCount: int64(z[0].Score), Rank: 1}
		if u, err := s.User(ctx, id); err == nil {
			e.Username, e.Team = u.Username, u.Team
		}
		res.TopTapper = &e
	}
	return res, nil
}
