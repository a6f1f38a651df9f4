package store

// The operator's side of the store: new rounds (reset), backup and restore
// (export/import), kicking players, the taps-per-second history and the
// numbers of the admin page. Every change is one Lua script, so that the
// consumer's apply script never sees half of it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/game"
)

// Keys and channels of the admin features.
const (
	KeyKicked = "game:kicked" // hash: player id -> kick record JSON {"user":{...},"kickedAt":ms,"removedTaps":n}
	// KeyRatePrefix + unix minute is a hash: unix second -> taps applied in
	// that second. Each key expires RateKeep after its minute.
	KeyRatePrefix = "game:tps:"
	// ChannelAdmin tells every instance that players were kicked or the
	// state was imported, so they drop cached players and reload the
	// kicked set.
	ChannelAdmin = "game:admin"
)

// RateKeep is how long per-second tap counts are kept.
const RateKeep = 20 * time.Minute

// ExportFormat and ExportVersion identify an export file.
const (
	ExportFormat  = "tapwars-export"
	ExportVersion = 1
)

// MaxImportPlayers bounds the players of an import file.
const MaxImportPlayers = 1_000_000

func rateKey(unixSec int64) string { return KeyRatePrefix + strconv.FormatInt(unixSec/60, 10) }

// Overview is what the admin page shows, read in one round trip.
type Overview struct {
	Round       int64           `json:"round"`
	BlueScore   int64           `json:"blueScore"`
	RedScore    int64           `json:"redScore"`
	TotalTaps   int64           `json:"totalTaps"`
	Players     int64           `json:"players"`
	Kicked      int64           `json:"kicked"`
	BlueOnline  int64           `json:"blueOnline"`
	RedOnline   int64           `json:"redOnline"`
	LastUpdated int64           `json:"lastUpdated"`
	Offsets     map[int32]int64 `json:"offsets"`     // next offset to apply, per partition
	RoundStarts map[int32]int64 `json:"roundStarts"` // first offset of this round, per partition
	// Rate holds taps applied per second, oldest first; the last entry is
	// the second before RateEnd.
	Rate    []int64 `json:"rate"`
	RateEnd int64   `json:"rateEnd"` // unix seconds
}

// Overview reads totals, players, presence, offsets, round starts and the
// per-second tap history of the last window (whole seconds before now).
func (s *Store) Overview(ctx context.Context, topic string, now time.Time, window time.Duration) (Overview, error) {
	secs := int64(window / time.Second)
	if secs <= 0 {
		secs = 900
	}
	end := now.Unix() // exclusive: the current second is still filling
	first := end - secs
	stale := strconv.FormatInt(now.Add(-s.window).UnixMilli(), 10)
	var (
		vals            *redis.SliceCmd
		players, kicked *redis.IntCmd
		blueN, redN     *redis.IntCmd
		offsets, starts *redis.MapStringStringCmd
		rates           []*redis.MapStringStringCmd
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		vals = p.MGet(ctx, KeyBlueScore, KeyRedScore, KeyTotalTaps, KeyRound, KeyUpdatedAt)
		players = p.HLen(ctx, KeyUsers)
		kicked = p.HLen(ctx, KeyKicked)
		blueN = p.ZCount(ctx, KeyOnlineBlue, stale, "+inf")
		redN = p.ZCount(ctx, KeyOnlineRed, stale, "+inf")
		offsets = p.HGetAll(ctx, KeyOffsets)
		starts = p.HGetAll(ctx, KeyRoundStarts)
		for m := first / 60; m <= (end-1)/60; m++ {
			rates = append(rates, p.HGetAll(ctx, KeyRatePrefix+strconv.FormatInt(m, 10)))
		}
		return nil
	})
	if err != nil {
		return Overview{}, fmt.Errorf("read admin overview: %w", err)
	}
	v := vals.Val()
	o := Overview{
		BlueScore: atoi(v[0]), RedScore: atoi(v[1]), TotalTaps: atoi(v[2]), Round: atoi(v[3]), LastUpdated: atoi(v[4]),
		Players: players.Val(), Kicked: kicked.Val(), BlueOnline: blueN.Val(), RedOnline: redN.Val(),
		Offsets: partitionMap(topic, offsets.Val()), RoundStarts: partitionMap(topic, starts.Val()),
		Rate: make([]int64, secs), RateEnd: end,
	}
	for _, r := range rates {
		for f, n := range r.Val() {
			sec, err := strconv.ParseInt(f, 10, 64)
			if err != nil || sec < first || sec >= end {
				continue
			}
			o.Rate[sec-first], _ = strconv.ParseInt(n, 10, 64)
		}
	}
	return o, nil
}

// partitionMap turns "topic/partition" fields into partition -> number.
func partitionMap(topic string, m map[string]string) map[int32]int64 {
	out := make(map[int32]int64, len(m))
	for f, v := range m {
		ps, ok := strings.CutPrefix(f, topic+"/")
		if !ok {
			continue
		}
		p, err := strconv.ParseInt(ps, 10, 32)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		out[int32(p)] = n
	}
	return out
}

// startArgs appends (field, offset) pairs in partition order.
func startArgs(args []any, topic string, starts map[int32]int64) []any {
	parts := make([]int32, 0, len(starts))
	for p := range starts {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		args = append(args, OffsetField(topic, p), starts[p])
	}
	return args
}

// resetScript starts a new round: the round number goes up, every
// partition's round start moves forward to the given offset (never back),
// team scores and the total go to zero, the leaderboard is emptied and the
// tapCount of every player who tapped this round is set to 0. Players,
// teams, presence and the applied offsets stay. Then every instance is told.
//
// Who tapped this round is the leaderboard: every tapwars write keeps
// "tapCount > 0" and "on the leaderboard" together, so a reset costs the
// round's active players, not everyone who ever joined. The first reset
// (round 0 -> 1) checks every player once, for players written by the old
// game, which had no leaderboard.
//
// KEYS: round, round starts, blue, red, total, leaderboard, users, updated
// ARGV: now, updates channel, then (offset field, start)...
// Returns {round, players whose tapCount was reset}.
var resetScript = redis.NewScript(`
local round = redis.call('INCR', KEYS[1])
for i = 3, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '-1')
  if tonumber(ARGV[i + 1]) > cur then redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
local ids
if round == 1 then
  ids = redis.call('HKEYS', KEYS[7])
else
  ids = redis.call('ZRANGE', KEYS[6], 0, -1)
end
redis.call('SET', KEYS[3], '0')
redis.call('SET', KEYS[4], '0')
redis.call('SET', KEYS[5], '0')
redis.call('DEL', KEYS[6])
local zeroed = 0
for lo = 1, #ids, 500 do
  local part = {}
  for k = lo, math.min(lo + 499, #ids) do part[#part + 1] = ids[k] end
  local us = redis.call('HMGET', KEYS[7], unpack(part))
  local hs = {}
  for k = 1, #part do
    local u = us[k]
    if u and not string.find(u, '"tapCount":0}$') then
      local patched, hits = string.gsub(u, '"tapCount":%-?[%d%.e%+]+}$', '"tapCount":0}')
      if hits ~= 1 then
        local ok, o = pcall(cjson.decode, u)
        if ok and type(o) == 'table' then
          o.tapCount = 0
          patched = cjson.encode(o)
        else
          patched = nil
        end
      end
      if patched then
        hs[#hs + 1] = part[k]
        hs[#hs + 1] = patched
        zeroed = zeroed + 1
      end
    end
  end
  if #hs > 0 then redis.call('HSET', KEYS[7], unpack(hs)) end
end
redis.call('SET', KEYS[8], ARGV[1])
redis.call('PUBLISH', ARGV[2], '1')
return {round, zeroed}
`)

// ResetResult says what a reset did.
type ResetResult struct {
	Round  int64 `json:"round"`  // the new round
	Zeroed int64 `json:"zeroed"` // players whose count went back to 0
}

// Reset starts a new round. starts holds, per partition of topic, the
// offset from which taps count in the new round: the partition's high
// watermark read from Kafka just before, so that every tap Kafka
// acknowledged before the reset lies below it and is skipped by the
// consumer's apply script (which compares each batch with the round start).
// Round starts only ever move forward; game:offsets is never touched.
func (s *Store) Reset(ctx context.Context, topic string, starts map[int32]int64, now time.Time) (ResetResult, error) {
	args := startArgs([]any{now.UnixMilli(), ChannelUpdates}, topic, starts)
	res, err := resetScript.Run(ctx, s.rdb, []string{KeyRound, KeyRoundStarts, KeyBlueScore, KeyRedScore,
		KeyTotalTaps, KeyLeaderboard, KeyUsers, KeyUpdatedAt}, args...).Int64Slice()
	if err != nil {
		return ResetResult{}, fmt.Errorf("reset: %w", err)
	}
	return ResetResult{Round: res[0], Zeroed: res[1]}, nil
}

// kickScript removes a player: their taps of this round leave their team's
// score, the total and the leaderboard, they leave presence and game:users
// (so taps of theirs still waiting in Kafka are skipped as unknown), and a
// kick record is kept in game:kicked.
//
// KEYS: users, leaderboard, blue, red, total, online blue, online red, kicked, updated
// ARGV: id, now, updates channel, admin channel
// Returns {status (0 unknown, 1 already kicked, 2 kicked), taps removed}.
var kickScript = redis.NewScript(`
local u = redis.call('HGET', KEYS[1], ARGV[1])
if not u then
  if redis.call('HEXISTS', KEYS[8], ARGV[1]) == 1 then return {1, 0} end
  return {0, 0}
end
local n = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]) or '0')
local team = string.match(u, '"team":"(%a+)"')
if n > 0 then
  if team == 'blue' then redis.call('DECRBY', KEYS[3], n) else redis.call('DECRBY', KEYS[4], n) end
  redis.call('DECRBY', KEYS[5], n)
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[8], ARGV[1], '{"user":' .. u .. ',"kickedAt":' .. ARGV[2] .. ',"removedTaps":' .. string.format('%d', n) .. '}')
redis.call('SET', KEYS[9], ARGV[2])
redis.call('PUBLISH', ARGV[3], '1')
redis.call('PUBLISH', ARGV[4], 'kick')
return {2, n}
`)

// ErrAlreadyKicked is returned when kicking a player who was kicked before.
var ErrAlreadyKicked = game.Errorf(game.ECONFLICT, "That player was already kicked.")

// Kick removes a player for good and returns how many taps of theirs left
// the scores. Their token stops working on every instance (handlers check
// the kicked set); taps of theirs still in Kafka are skipped.
func (s *Store) Kick(ctx context.Context, id string, now time.Time) (int64, error) {
	res, err := kickScript.Run(ctx, s.rdb, []string{KeyUsers, KeyLeaderboard, KeyBlueScore, KeyRedScore,
		KeyTotalTaps, KeyOnlineBlue, KeyOnlineRed, KeyKicked, KeyUpdatedAt},
		id, now.UnixMilli(), ChannelUpdates, ChannelAdmin).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("kick %s: %w", id, err)
	}
	switch res[0] {
	case 0:
		return 0, game.ErrUnknownPlayer
	case 1:
		return 0, ErrAlreadyKicked
	}
	return res[1], nil
}

// KickedIDs returns the ids of every kicked player.
func (s *Store) KickedIDs(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.HKeys(ctx, KeyKicked).Result()
	if err != nil {
		return nil, fmt.Errorf("read kicked players: %w", err)
	}
	return ids, nil
}

// IsKicked reports whether a player was kicked (one Redis round trip).
func (s *Store) IsKicked(ctx context.Context, id string) (bool, error) {
	ok, err := s.rdb.HExists(ctx, KeyKicked, id).Result()
	if err != nil {
		return false, fmt.Errorf("read kicked player: %w", err)
	}
	return ok, nil
}

// SubscribeAdmin signals whenever any instance kicked a player or imported
// a state, and once after each (re)subscription, since messages may have
// been missed meanwhile. Several signals in a row arrive as one. It ends
// when ctx ends.
func (s *Store) SubscribeAdmin(ctx context.Context) <-chan struct{} {
	return s.subscribe(ctx, ChannelAdmin)
}

// Export is the whole game state as a backup file.
//
// Players carry their tapCount of the current round; blueScore and redScore
// are the sums of their players' counts and totalTaps is blueScore +
// redScore. roundStarts and offsets describe where in the Kafka log the
// state was taken; Import does not restore them (see Import).
type Export struct {
	Format      string           `json:"format"`  // "tapwars-export"
	Version     int              `json:"version"` // 1
	ExportedAt  int64            `json:"exportedAt"`
	Round       int64            `json:"round"`
	BlueScore   int64            `json:"blueScore"`
	RedScore    int64            `json:"redScore"`
	TotalTaps   int64            `json:"totalTaps"`
	Players     []game.User      `json:"players"`
	Kicked      []KickRecord     `json:"kicked"`
	RoundStarts map[string]int64 `json:"roundStarts"` // "game-taps/<partition>" -> first offset of the round
	Offsets     map[string]int64 `json:"offsets"`     // "game-taps/<partition>" -> next offset to apply
}

// KickRecord is a kicked player as kept in game:kicked.
type KickRecord struct {
	User        game.User `json:"user"`
	KickedAt    int64     `json:"kickedAt"`
	RemovedTaps int64     `json:"removedTaps"`
}

// Export reads the whole state at one point in time (MULTI/EXEC).
func (s *Store) Export(ctx context.Context, now time.Time) (Export, error) {
	var (
		users, starts, offsets, kicked *redis.MapStringStringCmd
		vals                           *redis.SliceCmd
	)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		users = p.HGetAll(ctx, KeyUsers)
		vals = p.MGet(ctx, KeyBlueScore, KeyRedScore, KeyTotalTaps, KeyRound)
		starts = p.HGetAll(ctx, KeyRoundStarts)
		offsets = p.HGetAll(ctx, KeyOffsets)
		kicked = p.HGetAll(ctx, KeyKicked)
		return nil
	})
	if err != nil {
		return Export{}, fmt.Errorf("export: %w", err)
	}
	v := vals.Val()
	ex := Export{
		Format: ExportFormat, Version: ExportVersion, ExportedAt: now.UnixMilli(),
		BlueScore: atoi(v[0]), RedScore: atoi(v[1]), TotalTaps: atoi(v[2]), Round: atoi(v[3]),
		Players: make([]game.User, 0, len(users.Val())), Kicked: []KickRecord{},
		RoundStarts: map[string]int64{}, Offsets: map[string]int64{},
	}
	for id, raw := range users.Val() {
		var u game.User
		if err := json.Unmarshal([]byte(raw), &u); err != nil {
			return Export{}, fmt.Errorf("export: player %s is damaged: %w", id, err)
		}
		u.ID = id
		ex.Players = append(ex.Players, u)
	}
	sort.Slice(ex.Players, func(i, j int) bool {
		a, b := ex.Players[i], ex.Players[j]
		if a.JoinedAt != b.JoinedAt {
			return a.JoinedAt < b.JoinedAt
		}
		return a.ID < b.ID
	})
	for id, raw := range kicked.Val() {
		var k KickRecord
		if err := json.Unmarshal([]byte(raw), &k); err != nil {
			return Export{}, fmt.Errorf("export: kick record %s is damaged: %w", id, err)
		}
		k.User.ID = id
		ex.Kicked = append(ex.Kicked, k)
	}
	sort.Slice(ex.Kicked, func(i, j int) bool { return ex.Kicked[i].User.ID < ex.Kicked[j].User.ID })
	for f, n := range starts.Val() {
		ex.RoundStarts[f] = atoi(n)
	}
	for f, n := range offsets.Val() {
		ex.Offsets[f] = atoi(n)
	}
	return ex, nil
}

// importErr says why an import file was refused (nothing was changed).
func importErr(format string, a ...any) error {
	return game.Errorf(game.EINVALID, "import refused: "+format, a...)
}

// maxIDLen is the longest player id (the token format's limit).
const maxIDLen = 64

func validID(id string) bool {
	if id == "" || len(id) > maxIDLen {
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

// ParseExport decodes and validates an export file. Unknown fields, a wrong
// format or version, invalid ids, names or teams, negative counts, duplicate
// players, team scores that are not the sums of their players' counts and a
// total that is not blue + red are refused with an *ImportError naming the
// first problem.
func ParseExport(data []byte) (Export, error) {
	var ex Export
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ex); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return Export{}, importErr("the file is not valid JSON (at byte %d: %v)", se.Offset, err)
		case errors.As(err, &te) && te.Field == "":
			return Export{}, importErr("the file must be a JSON object (a tapwars export), not %s", te.Value)
		case errors.As(err, &te):
			return Export{}, importErr("field %q must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		case errors.Is(err, io.EOF):
			return Export{}, importErr("the file is empty")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return Export{}, importErr("the file is not valid JSON (it ends too early: cut off?)")
		}
		return Export{}, importErr("the file is not a tapwars export: %v", err)
	}
	if dec.More() {
		return Export{}, importErr("the file holds more than one JSON document")
	}
	if ex.Format != ExportFormat {
		return Export{}, importErr("format must be %q (got %q): is this a tapwars export?", ExportFormat, ex.Format)
	}
	if ex.Version != ExportVersion {
		return Export{}, importErr("version %d is not supported (this server reads version %d)", ex.Version, ExportVersion)
	}
	if err := inRange("round", ex.Round); err != nil {
		return Export{}, err
	}
	for name, n := range map[string]int64{"blueScore": ex.BlueScore, "redScore": ex.RedScore, "totalTaps": ex.TotalTaps, "exportedAt": ex.ExportedAt} {
		if err := inRange(name, n); err != nil {
			return Export{}, err
		}
	}
	for what, m := range map[string]map[string]int64{"roundStarts": ex.RoundStarts, "offsets": ex.Offsets} {
		for f, n := range m {
			if !validOffsetField(f) {
				return Export{}, importErr("%s: %q is not a partition of the tap log (want \"%s/<partition>\")", what, f, exportTopic)
			}
			if err := inRange(what+"["+f+"]", n); err != nil {
				return Export{}, err
			}
		}
	}
	if len(ex.Players) > MaxImportPlayers {
		return Export{}, importErr("too many players (%d, limit %d)", len(ex.Players), MaxImportPlayers)
	}
	seen := make(map[string]bool, len(ex.Players)+len(ex.Kicked))
	var sum = map[game.Team]int64{}
	for i, u := range ex.Players {
		where := fmt.Sprintf("players[%d]", i)
		if err := validUser(u, where); err != nil {
			return Export{}, err
		}
		if seen[u.ID] {
			return Export{}, importErr("%s: player id %q appears twice", where, u.ID)
		}
		seen[u.ID] = true
		if err := inRange(where+".tapCount", u.TapCount); err != nil {
			return Export{}, err
		}
		sum[u.Team] += u.TapCount
		if sum[u.Team] > game.MaxCount {
			return Export{}, importErr("%s: the %s team's taps add up to more than %d", where, u.Team, int64(game.MaxCount))
		}
	}
	if sum[game.Blue] != ex.BlueScore {
		return Export{}, importErr("blueScore is %d but blue players' tapCounts add up to %d", ex.BlueScore, sum[game.Blue])
	}
	if sum[game.Red] != ex.RedScore {
		return Export{}, importErr("redScore is %d but red players' tapCounts add up to %d", ex.RedScore, sum[game.Red])
	}
	if ex.TotalTaps != ex.BlueScore+ex.RedScore {
		return Export{}, importErr("totalTaps is %d but blueScore + redScore is %d", ex.TotalTaps, ex.BlueScore+ex.RedScore)
	}
	for i, k := range ex.Kicked {
		where := fmt.Sprintf("kicked[%d]", i)
		if err := validUser(k.User, where); err != nil {
			return Export{}, err
		}
		if seen[k.User.ID] {
			return Export{}, importErr("%s: player id %q is both a player and kicked, or kicked twice", where, k.User.ID)
		}
		seen[k.User.ID] = true
		if err := inRange(where+".kickedAt", k.KickedAt); err != nil {
			return Export{}, err
		}
		if err := inRange(where+".removedTaps", k.RemovedTaps); err != nil {
			return Export{}, err
		}
	}
	return ex, nil
}

func validUser(u game.User, where string) error {
	if !validID(u.ID) {
		return importErr("%s: id %q must be 1 to %d characters of a-z, A-Z, 0-9, '-' or '_'", where, u.ID, maxIDLen)
	}
	name, err := game.NormalizeName(u.Username)
	if err != nil {
		return importErr("%s: username %q is not valid: %s", where, u.Username, game.ErrorMessage(err))
	}
	if name != u.Username {
		return importErr("%s: username %q is not in its normal form (%q)", where, u.Username, name)
	}
	if !u.Team.Valid() {
		return importErr("%s (%s): team must be \"blue\" or \"red\", not %q", where, u.Username, u.Team)
	}
	if err := inRange(where+".joinedAt", u.JoinedAt); err != nil {
		return err
	}
	if u.SessionID != "" && !validID(u.SessionID) {
		return importErr("%s (%s): sessionId %q must be 1 to %d characters of a-z, A-Z, 0-9, '-' or '_'", where, u.Username, u.SessionID, maxIDLen)
	}
	return nil
}

// inRange checks a number of an import: 0 to game.MaxCount, which Redis
// holds exactly in both its integers and the leaderboard's doubles.
func inRange(field string, n int64) error {
	if n < 0 || n > game.MaxCount {
		return importErr("%s is %d: it must be a whole number from 0 to %d", field, n, int64(game.MaxCount))
	}
	return nil
}

// exportTopic is the topic whose partitions an export names.
const exportTopic = "game-taps"

// validOffsetField reports whether f is "game-taps/<partition>".
func validOffsetField(f string) bool {
	p, ok := strings.CutPrefix(f, exportTopic+"/")
	n, err := strconv.ParseInt(p, 10, 32)
	return ok && err == nil && n >= 0 && strconv.FormatInt(n, 10) == p
}

func jsonKind(k string) string {
	switch k {
	case "int64", "int", "int32":
		return "a whole number"
	case "string":
		return "a string"
	case "slice":
		return "a list"
	case "map", "struct":
		return "an object"
	}
	return k
}

// importScript replaces the state with an import: players (game:users),
// scores, total, leaderboard and kicked players; presence keeps only
// players that still exist, on their (possibly new) team. The round number
// becomes max(current + 1, imported) and every round start moves forward to
// the given offsets, so that taps already in Kafka never count on top of
// the imported counts. game:offsets is not touched.
//
// KEYS: users, blue, red, total, leaderboard, online blue, online red, round,
//
//	round starts, updated, kicked
//
// ARGV: now, updates channel, admin channel, round, blue, red, total,
//
//	nStarts, (field, start)*nStarts, nPlayers, (id, json, count)*nPlayers,
//	nKicked, (id, json)*nKicked
var importScript = redis.NewScript(`
local i = 8
local nstarts = tonumber(ARGV[i]); i = i + 1
for k = 1, nstarts do
  local cur = tonumber(redis.call('HGET', KEYS[9], ARGV[i]) or '-1')
  if tonumber(ARGV[i + 1]) > cur then redis.call('HSET', KEYS[9], ARGV[i], ARGV[i + 1]) end
  i = i + 2
end
local round = tonumber(redis.call('GET', KEYS[8]) or '0') + 1
if tonumber(ARGV[4]) > round then round = tonumber(ARGV[4]) end
redis.call('SET', KEYS[8], string.format('%d', round))
redis.call('DEL', KEYS[1], KEYS[5], KEYS[11])
local np = tonumber(ARGV[i]); i = i + 1
local hs, lb = {}, {}
for k = 1, np do
  hs[#hs + 1] = ARGV[i]; hs[#hs + 1] = ARGV[i + 1]
  if ARGV[i + 2] ~= '0' then lb[#lb + 1] = ARGV[i + 2]; lb[#lb + 1] = ARGV[i] end
  i = i + 3
  if #hs >= 1000 then redis.call('HSET', KEYS[1], unpack(hs)); hs = {} end
  if #lb >= 1000 then redis.call('ZADD', KEYS[5], unpack(lb)); lb = {} end
end
if #hs > 0 then redis.call('HSET', KEYS[1], unpack(hs)) end
if #lb > 0 then redis.call('ZADD', KEYS[5], unpack(lb)) end
local nk = tonumber(ARGV[i]); i = i + 1
for k = 1, nk do
  redis.call('HSET', KEYS[11], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('SET', KEYS[2], ARGV[5])
redis.call('SET', KEYS[3], ARGV[6])
redis.call('SET', KEYS[4], ARGV[7])
for s = 6, 7 do
  local members = redis.call('ZRANGE', KEYS[s], 0, -1, 'WITHSCORES')
  for m = 1, #members, 2 do
    local id = members[m]
    local u = redis.call('HGET', KEYS[1], id)
    local team = u and string.match(u, '"team":"(%a+)"')
    if not u then
      redis.call('ZREM', KEYS[s], id)
    elseif s == 6 and team ~= 'blue' then
      redis.call('ZREM', KEYS[6], id)
      redis.call('ZADD', KEYS[7], members[m + 1], id)
    elseif s == 7 and team == 'blue' then
      redis.call('ZREM', KEYS[7], id)
      redis.call('ZADD', KEYS[6], members[m + 1], id)
    end
  end
end
redis.call('SET', KEYS[10], ARGV[1])
redis.call('PUBLISH', ARGV[2], '1')
redis.call('PUBLISH', ARGV[3], 'import')
return round
`)

// Import replaces the game state with a validated export (see ParseExport)
// in one atomic step, and returns the new round number.
//
// The imported counts become the truth as of now: like a reset, the import
// moves every round start forward to starts (the partitions' high
// watermarks, read from Kafka just before), so no tap already in Kafka is
// counted on top of them, and taps accepted after the import count on top.
// The file's roundStarts and offsets are informational and not restored:
// they describe a position in a log that may no longer exist, and
// game:offsets must never go back (that would count taps twice). The round
// number becomes max(current round + 1, the file's round).
func (s *Store) Import(ctx context.Context, ex Export, topic string, starts map[int32]int64, now time.Time) (int64, error) {
	args := make([]any, 0, 16+2*len(starts)+3*len(ex.Players)+2*len(ex.Kicked))
	args = append(args, now.UnixMilli(), ChannelUpdates, ChannelAdmin, ex.Round, ex.BlueScore, ex.RedScore, ex.TotalTaps, len(starts))
	args = startArgs(args, topic, starts)
	args = append(args, len(ex.Players))
	for _, u := range ex.Players {
		raw, err := json.Marshal(u)
		if err != nil {
			return 0, fmt.Errorf("import: encode player: %w", err)
		}
		args = append(args, u.ID, string(raw), strconv.FormatInt(u.TapCount, 10))
	}
	args = append(args, len(ex.Kicked))
	for _, k := range ex.Kicked {
		raw, err := json.Marshal(k)
		if err != nil {
			return 0, fmt.Errorf("import: encode kick record: %w", err)
		}
		args = append(args, k.User.ID, string(raw))
	}
	round, err := importScript.Run(ctx, s.rdb, []string{KeyUsers, KeyBlueScore, KeyRedScore, KeyTotalTaps,
		KeyLeaderboard, KeyOnlineBlue, KeyOnlineRed, KeyRound, KeyRoundStarts, KeyUpdatedAt, KeyKicked}, args...).Int64()
	if err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}
	return round, nil
}
