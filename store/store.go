// Package store keeps the game state in Redis. It is the only package that
// speaks Redis: players, team scores, totals, the leaderboard, presence,
// consumed Kafka offsets and the change notifications between instances.
//
// Every multi-key change runs as one Lua script, so that state and the Kafka
// offsets it was computed from always change together.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/game"
)

// OnlineWindow is how long a player counts as online after their last tap
// or live-connection heartbeat.
const OnlineWindow = 60 * time.Second

// MaxOnlineListed caps the "users" list of a snapshot (most recently seen first).
const MaxOnlineListed = 100

// Store is the game state in Redis.
type Store struct {
	rdb    redis.UniversalClient
	window time.Duration // online window
}

// New returns a Store on an existing client.
func New(rdb redis.UniversalClient) *Store { return NewWithOptions(rdb, Options{}) }

// Options tune a Store; zero values take the defaults.
type Options struct {
	// OnlineWindow is how long a player counts as online after their last
	// tap or heartbeat (default OnlineWindow). Every instance must use the
	// same; live connections' heartbeats must come more often.
	OnlineWindow time.Duration
}

// NewWithOptions returns a Store on an existing client: one server's
// (*redis.Client) or a Sentinel failover client's.
func NewWithOptions(rdb redis.UniversalClient, opt Options) *Store {
	if opt.OnlineWindow <= 0 {
		opt.OnlineWindow = OnlineWindow
	}
	rdb.AddHook(outageHook{})
	return &Store{rdb: rdb, window: opt.OnlineWindow}
}

// Client exposes the client for health checks and tests.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// OffsetField is the field of a partition in game:offsets and game:round:starts.
func OffsetField(topic string, partition int32) string {
	return topic + "/" + strconv.FormatInt(int64(partition), 10)
}

// joinScript assigns the team with fewer players online (ties broken by the
// coin argument), stores the user and marks them online, atomically, so that
// teams stay balanced when several instances take joins at once.
//
// ARGV: id, username as a JSON string, joinedAt, sessionId, now, staleBefore, coin, name keys
var joinScript = newLuaScript("join.lua", "names.lua")

// nameKeysArg is a name's keys as one script argument.
func nameKeysArg(name string) string { return strings.Join(game.NameKeys(name), "\n") }

// Join creates a player with a normalised name and puts them on the team
// with fewer players online.
func (s *Store) Join(ctx context.Context, name string, now time.Time) (game.User, error) {
	return s.JoinOn(ctx, name, now, -1)
}

// JoinOn is Join with the player's id pinned to a partition of the tap log
// (game.PinnedID); partition < 0 pins nothing.
func (s *Store) JoinOn(ctx context.Context, name string, now time.Time, partition int32) (game.User, error) {
	name, err := game.NormalizeName(name)
	if err != nil {
		return game.User{}, err
	}
	id, sid := newID(), newID()
	if partition >= 0 {
		id = game.PinnedID(id, partition)
	}
	jname, err := json.Marshal(name)
	if err != nil {
		return game.User{}, fmt.Errorf("encode name: %w", err)
	}
	coin := "0"
	if b := make([]byte, 1); readRand(b) == nil && b[0]&1 == 1 {
		coin = "1"
	}
	ms := now.UnixMilli()
	raw, err := joinScript.Run(ctx, s.rdb, joinScript.Keys(0),
		id, string(jname), ms, sid, ms, ms-s.window.Milliseconds(), coin, nameKeysArg(name)).Text()
	if err != nil {
		return game.User{}, fmt.Errorf("join %q: %w", name, err)
	}
	if raw == "taken" {
		return game.User{}, s.nameTaken(ctx, name)
	}
	var u game.User
	if err := json.Unmarshal([]byte(raw), &u); err != nil {
		return game.User{}, fmt.Errorf("decode joined user: %w", err)
	}
	_ = s.Notify(ctx) // players online changed; a lost notice heals at the next change
	return u, nil
}

// User returns one player with their current tap count.
func (s *Store) User(ctx context.Context, id string) (game.User, error) {
	raw, err := s.rdb.HGet(ctx, KeyUsers, id).Bytes()
	if errors.Is(err, redis.Nil) {
		return game.User{}, game.ErrUnknownPlayer
	}
	if err != nil {
		return game.User{}, fmt.Errorf("get user %s: %w", id, err)
	}
	var u game.User
	if err := json.Unmarshal(raw, &u); err != nil {
		return game.User{}, fmt.Errorf("decode user %s: %w", id, err)
	}
	return u, nil
}

// Touch marks players online now (live connections send heartbeats).
func (s *Store) Touch(ctx context.Context, now time.Time, users ...game.User) error {
	if len(users) == 0 {
		return nil
	}
	ms := float64(now.UnixMilli())
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, u := range users {
			key := KeyOnlineRed
			if u.Team == game.Blue {
				key = KeyOnlineBlue
			}
			p.ZAdd(ctx, key, redis.Z{Score: ms, Member: u.ID})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("touch presence: %w", err)
	}
	return nil
}

// Stats returns taps and rank for each id, and how many are ranked, in two
// round trips. Ties share a rank (1, 2, 2, 4): a player's rank is one more
// than the number of players with more taps.
func (s *Store) Stats(ctx context.Context, ids []string) (map[string]game.PlayerStats, error) {
	out := make(map[string]game.PlayerStats, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	scores := make([]*redis.FloatCmd, len(ids))
	var ranked *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			scores[i] = p.ZScore(ctx, KeyLeaderboard, id)
		}
		ranked = p.ZCard(ctx, KeyLeaderboard)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("player stats: %w", err)
	}
	above := make([]*redis.IntCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range ids {
			if v, err := scores[i].Result(); err == nil {
				above[i] = p.ZCount(ctx, KeyLeaderboard, "("+strconv.FormatFloat(v, 'f', -1, 64), "+inf")
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("player ranks: %w", err)
	}
	for i, id := range ids {
		st := game.PlayerStats{Of: ranked.Val()}
		if v, err := scores[i].Result(); err == nil {
			st.Taps = int64(v)
			st.Rank = int(above[i].Val()) + 1
		}
		out[id] = st
	}
	return out, nil
}

// Snapshot reads the scoreboard, the top players and who is online, in two
// round trips, without scanning all players.
func (s *Store) Snapshot(ctx context.Context, top int, now time.Time) (game.Snapshot, error) {
	if top <= 0 {
		top = 10
	}
	stale := strconv.FormatInt(now.Add(-s.window).UnixMilli(), 10)
	var (
		vals              *redis.SliceCmd
		lb                *redis.ZSliceCmd
		blueN, redN       *redis.IntCmd
		blueList, redList *redis.ZSliceCmd
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		vals = p.MGet(ctx, KeyBlueScore, KeyRedScore, KeyTotalTaps, KeyRound, KeyUpdatedAt, KeyRoundSchedule, KeyTeams)
		lb = p.ZRevRangeWithScores(ctx, KeyLeaderboard, 0, int64(top-1))
		blueN = p.ZCount(ctx, KeyOnlineBlue, stale, "+inf")
		redN = p.ZCount(ctx, KeyOnlineRed, stale, "+inf")
		rng := &redis.ZRangeBy{Min: stale, Max: "+inf", Count: MaxOnlineListed}
		blueList = p.ZRevRangeByScoreWithScores(ctx, KeyOnlineBlue, rng)
		redList = p.ZRevRangeByScoreWithScores(ctx, KeyOnlineRed, rng)
		return nil
	})
	if err != nil {
		return game.Snapshot{}, fmt.Errorf("read game state: %w", err)
	}
	v := vals.Val()
	st := game.State{
		BlueScore:   atoi(v[0]),
		RedScore:    atoi(v[1]),
		TotalTaps:   atoi(v[2]),
		Round:       atoi(v[3]),
		LastUpdated: atoi(v[4]),
		BlueOnline:  blueN.Val(),
		RedOnline:   redN.Val(),
	}
	st.ActiveUsers = st.BlueOnline + st.RedOnline
	if st.LastUpdated == 0 {
		st.LastUpdated = now.UnixMilli()
	}

	// Most recently seen online players of both teams, merged.
	online := mergeRecent(blueList.Val(), redList.Val(), MaxOnlineListed)
	ids := make([]string, 0, len(lb.Val())+len(online))
	for _, z := range lb.Val() {
		ids = append(ids, z.Member.(string))
	}
	ids = append(ids, online...)
	users, err := s.users(ctx, ids)
	if err != nil {
		return game.Snapshot{}, err
	}
	snap := game.Snapshot{GameState: st, Users: []game.Player{}, Leaderboard: []game.LeaderboardEntry{}, Teams: parseTeams(v[6])}
	if err := s.roundState(ctx, &snap, v[5], now); err != nil {
		return game.Snapshot{}, err
	}
	rank := 0
	for i, z := range lb.Val() {
		if i == 0 || z.Score != lb.Val()[i-1].Score { // ties share a rank: 1, 2, 2, 4
			rank = i + 1
		}
		id := z.Member.(string)
		u, ok := users[id]
		if !ok {
			continue
		}
		snap.Leaderboard = append(snap.Leaderboard, game.LeaderboardEntry{
			ID: id, Username: u.Username, Team: u.Team, TapCount: int64(z.Score), Rank: rank,
		})
	}
	for _, id := range online {
		if u, ok := users[id]; ok {
			snap.Users = append(snap.Users, u.Public())
		}
	}
	return snap, nil
}

// roundState fills the snapshot's round from the stored schedule raw (a
// string, or nil in open play) and the round's result.
func (s *Store) roundState(ctx context.Context, snap *game.Snapshot, raw any, now time.Time) error {
	str, _ := raw.(string)
	sc, err := decodeSchedule(str)
	if err != nil {
		return err
	}
	if sc == nil || sc.Number != snap.GameState.Round {
		// open play (or a schedule behind the round an import started)
		snap.Round = (&game.RoundSchedule{Number: snap.GameState.Round, Mode: game.ModeOpen}).State(0, nil)
		return nil
	}
	var res *game.RoundResult
	if sc.Status(now.UnixMilli()) == game.StatusOver {
		if res, err = s.RoundResult(ctx, sc.Number); err != nil {
			return err
		}
	}
	snap.Schedule = sc
	snap.Round = sc.State(now.UnixMilli(), res)
	return nil
}

func (s *Store) users(ctx context.Context, ids []string) (map[string]game.User, error) {
	out := make(map[string]game.User, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	raws, err := s.rdb.HMGet(ctx, KeyUsers, ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	for i, r := range raws {
		str, ok := r.(string)
		if !ok {
			continue
		}
		var u game.User
		if err := json.Unmarshal([]byte(str), &u); err != nil {
			continue // a damaged record must not break the scoreboard
		}
		out[ids[i]] = u
	}
	return out, nil
}

func mergeRecent(a, b []redis.Z, limit int) []string {
	out := make([]string, 0, min(limit, len(a)+len(b)))
	i, j := 0, 0
	for len(out) < limit && (i < len(a) || j < len(b)) {
		if j >= len(b) || (i < len(a) && a[i].Score >= b[j].Score) {
			out = append(out, a[i].Member.(string))
			i++
		} else {
			out = append(out, b[j].Member.(string))
			j++
		}
	}
	return out
}

// Notify tells every instance that the game changed.
func (s *Store) Notify(ctx context.Context) error {
	if err := s.rdb.Publish(ctx, ChannelUpdates, "1").Err(); err != nil {
		return fmt.Errorf("publish update: %w", err)
	}
	return nil
}

// Subscribe delivers a signal whenever any instance changed the game. The
// channel has room for one signal: several changes in a row arrive as one.
// It also signals after the subscription is (re)established, since changes
// may have been missed while it was down. It ends when ctx ends.
func (s *Store) Subscribe(ctx context.Context) <-chan struct{} {
	return s.subscribe(ctx, ChannelUpdates)
}

// subscribe follows a pub/sub channel as coalesced signals, resubscribing
// after Redis comes back (and signalling then, to catch up).
func (s *Store) subscribe(ctx context.Context, channel string) <-chan struct{} {
	out := make(chan struct{}, 1)
	signal := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			ps := s.rdb.Subscribe(ctx, channel)
			if _, err := ps.Receive(ctx); err != nil {
				_ = ps.Close()
				select {
				case <-ctx.Done():
				case <-time.After(500 * time.Millisecond):
				}
				continue
			}
			signal() // catch up on what happened while not subscribed
			ch := ps.Channel(redis.WithChannelHealthCheckInterval(5 * time.Second))
		recv:
			for {
				select {
				case <-ctx.Done():
					break recv
				case _, ok := <-ch:
					if !ok {
						break recv
					}
					signal()
				}
			}
			_ = ps.Close()
		}
	}()
	return out
}

// Offsets returns the next offset to apply for every partition of topic that
// has one stored.
func (s *Store) Offsets(ctx context.Context, topic string, partitions []int32) (map[int32]int64, error) {
	out := make(map[int32]int64, len(partitions))
	if len(partitions) == 0 {
		return out, nil
	}
	fields := make([]string, len(partitions))
	for i, p := range partitions {
		fields[i] = OffsetField(topic, p)
	}
	vals, err := s.rdb.HMGet(ctx, KeyOffsets, fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("read offsets of %s: %w", topic, err)
	}
	for i, v := range vals {
		if str, ok := v.(string); ok {
			n, err := strconv.ParseInt(str, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("offset %s is %q: %w", fields[i], str, err)
			}
			out[partitions[i]] = n
		}
	}
	return out, nil
}

func atoi(v any) int64 {
	s, ok := v.(string)
	if !ok {
		return 0
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

var readRand = func(b []byte) error { _, err := rand.Read(b); return err }

// newID returns a random 128-bit id in hex.
func newID() string {
	var b [16]byte
	if err := readRand(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // cannot happen on Linux
	}
	return hex.EncodeToString(b[:])
}

// Teams reads how the teams are shown (game.DefaultTeams until the host
// sets them).
func (s *Store) Teams(ctx context.Context) (game.Teams, error) {
	v, err := s.rdb.Get(ctx, KeyTeams).Result()
	if errors.Is(err, redis.Nil) {
		return game.DefaultTeams(), nil
	}
	if err != nil {
		return game.Teams{}, fmt.Errorf("read teams: %w", err)
	}
	return parseTeams(v), nil
}

// parseTeams is the stored teams JSON, or the defaults if there is none
// (or it cannot be read: the game goes on in its own colours).
func parseTeams(v any) game.Teams {
	raw, ok := v.(string)
	if !ok {
		return game.DefaultTeams()
	}
	var ts game.Teams
	if err := json.Unmarshal([]byte(raw), &ts); err != nil {
		return game.DefaultTeams()
	}
	if n, err := game.NormalizeTeams(ts); err == nil {
		return n
	}
	return game.DefaultTeams()
}
