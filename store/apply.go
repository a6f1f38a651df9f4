package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/game"
)

// Keys of the projection's round bookkeeping (see applyScript).
const (
	// KeyRoundParts: "topic/partition" -> the round of the last round or
	// import marker applied from that partition. Taps of a partition whose
	// round is behind game:round belong to an ended round and are skipped.
	KeyRoundParts = "game:round:parts"
	// KeyImportRound is the round that the last import started (joins and
	// kicks logged before it on a partition not yet past its marker are
	// dropped, as the import replaced them).
	KeyImportRound = "game:round:import"
	// KeyLeaderboardPrev is the previous round's leaderboard, so that a kick
	// logged just before a reset removes the same taps in any replay order.
	KeyLeaderboardPrev = "game:leaderboard:prev"
	// KeyRoundSchedule is the current round's schedule (JSON
	// game.RoundSchedule); absent in open play.
	KeyRoundSchedule = "game:round:schedule"
	// KeyRoundPartSchedules: "topic/partition" -> the schedule of the
	// partition's round (absent: open play), which decides which of the
	// partition's taps count (game.RoundSchedule.Counts).
	KeyRoundPartSchedules = "game:round:parts:schedule"
	// KeyRoundResults: round -> its final result (JSON game.RoundResult);
	// the first result logged for a round stays.
	KeyRoundResults = "game:rounds:results"
	// KeyRounds indexes the results: a sorted set of round numbers.
	KeyRounds = "game:rounds"
	// KeyTeams is how the teams are shown (JSON game.Teams): the last
	// teams fact; absent: game.DefaultTeams.
	KeyTeams = "game:teams"
)

// projectionKeys are the KEYS of every script that changes the projection
// (apply and reset); the taps-per-second key of the batch's minute is added
// as KEYS[11].
var projectionKeys = []string{KeyUsers, KeyBlueScore, KeyRedScore, KeyTotalTaps, KeyLeaderboard,
	KeyOffsets, KeyOnlineBlue, KeyOnlineRed, KeyRoundStarts, KeyUpdatedAt, "", KeyRound,
	KeyRoundParts, KeyKicked, KeyImportRound, KeyLeaderboardPrev,
	KeyRoundPartSchedules, KeyRoundSchedule, KeyRoundResults, KeyRounds, KeyTeams, KeyNames}

func projKeys(nowMs int64) []string {
	keys := append([]string(nil), projectionKeys...)
	keys[10] = rateKey(nowMs / 1000)
	return keys
}

// newRoundLua starts round R if it is ahead of game:round: scores and total
// to zero; for a round, every player who tapped gets tapCount 0 and the
// leaderboard becomes the previous one; for an import (imp), players,
// presence, leaderboards and kicked players are deleted (the import's
// player records follow). Returns the players zeroed, or -1 if R is not
// ahead. The first reset (round 0) checks every player once, for players
// written by the old game, which had no leaderboard. It also holds
// set_count, shared by the scripts that rewrite a player's tapCount.
const newRoundLua = `
-- set_count returns the user JSON u with its final tapCount set to n (a
-- string of digits), or nil when u does not end with a tapCount.
local function set_count(u, n)
  local patched, hits = string.gsub(u, '"tapCount":%-?[%d%.e%+]+}$', '"tapCount":' .. n .. '}')
  if hits == 1 then return patched end
  return nil
end
local function zero_count(u)
  if string.find(u, '"tapCount":0}$') then return nil end
  local patched = set_count(u, '0')
  if patched then return patched end
  local ok, o = pcall(cjson.decode, u)
  if ok and type(o) == 'table' then
    o.tapCount = 0
    return cjson.encode(o)
  end
  return nil
end
local function new_round(R, imp)
  local round = tonumber(redis.call('GET', KEYS[12]) or '0')
  if R <= round then return -1 end
  redis.call('SET', KEYS[12], string.format('%d', R))
  redis.call('SET', KEYS[2], '0')
  redis.call('SET', KEYS[3], '0')
  redis.call('SET', KEYS[4], '0')
  if imp then
    redis.call('DEL', KEYS[1], KEYS[5], KEYS[7], KEYS[8], KEYS[14], KEYS[16], KEYS[22])
    redis.call('SET', KEYS[15], string.format('%d', R))
    return 0
  end
  local ids
  if round == 0 then ids = redis.call('HKEYS', KEYS[1]) else ids = redis.call('ZRANGE', KEYS[5], 0, -1) end
  local zeroed = 0
  for lo = 1, #ids, 500 do
    local part = {}
    for k = lo, math.min(lo + 499, #ids) do part[#part + 1] = ids[k] end
    local us = redis.call('HMGET', KEYS[1], unpack(part))
    local hs = {}
    for k = 1, #part do
      local p = us[k] and zero_count(us[k])
      if p then hs[#hs + 1] = part[k]; hs[#hs + 1] = p; zeroed = zeroed + 1 end
    end
    if #hs > 0 then redis.call('HSET', KEYS[1], unpack(hs)) end
  end
  if redis.call('EXISTS', KEYS[5]) == 1 then
    redis.call('RENAME', KEYS[5], KEYS[16])
  else
    redis.call('DEL', KEYS[16])
  end
  return zeroed
end
`

// applyScript applies a batch of one partition in log order and stores the
// partition's next offset in the same atomic step. It refuses a batch whose
// records were (partly) applied before, or that does not follow what the
// store holds of the partition (Behind: the store lost records, e.g. after
// FLUSHALL), and says which, so the caller can refilter or replay. Taps of
// unknown players are skipped and reported. The team always comes from the
// stored user, never from the event.
//
// KEYS: projectionKeys.
// ARGV: offset field, from, next, start ('1': the store may begin here), now,
// then steps:
//
//	'T', n, (id, count)*n   taps, aggregated per player
//	'J', id, user, team, joinedAt, name keys   join
//	'K', id, at             kick
//	'R', round, offset, schedule   round marker (schedule: JSON, '' in open play)
//	'W', round, result      result of a timed round
//	'I', round, offset      import marker
//	'P', id, user, team, tapCount, name keys   player of an import
//	'X', id, kick record    kicked player of an import
//	'N', teams              teams' names and colours (JSON)
//
// Returns {status, applied, unknown, old round, offset, kicked}.
var applyScript *redis.Script

const applyScriptSrc = newRoundLua + namesLua + `
local field = ARGV[1]
local from, nxt = tonumber(ARGV[2]), tonumber(ARGV[3])
local cur = redis.call('HGET', KEYS[6], field)
if cur then
  cur = tonumber(cur)
  if cur >= nxt then return {1, 0, 0, 0, cur} end
  if cur > from then return {2, 0, 0, 0, cur} end
  if cur < from and ARGV[4] ~= '1' then return {4, 0, 0, 0, cur} end
elseif ARGV[4] ~= '1' then
  return {4, 0, 0, 0, -1}
end
-- Every check before the first write: Redis does not roll a script back,
-- so an error after a write would leave the batch half applied.
for _, k in ipairs({KEYS[2], KEYS[3], KEYS[4], KEYS[12]}) do
  local v = redis.call('GET', k)
  if v and not string.match(v, '^%-?%d+$') then
    return redis.error_reply('ERR ' .. k .. ' is not a whole number ("' .. string.sub(v, 1, 20) .. '"): nothing of the batch was applied')
  end
end
for k, want in pairs({[1] = 'hash', [5] = 'zset', [7] = 'zset', [8] = 'zset', [9] = 'hash', [11] = 'hash', [13] = 'hash', [14] = 'hash', [16] = 'zset', [17] = 'hash', [19] = 'hash', [20] = 'zset', [21] = 'string', [22] = 'hash'}) do
  local t = redis.call('TYPE', KEYS[k]).ok
  if t ~= 'none' and t ~= want then
    return redis.error_reply('ERR ' .. KEYS[k] .. ' is a ' .. t .. ', not a ' .. want .. ': nothing of the batch was applied')
  end
end
local now = ARGV[5]
if not cur then
  -- The partition starts over from its log's start: its round bookkeeping
  -- too (the markers in the log set it again).
  redis.call('HDEL', KEYS[13], field)
  redis.call('HDEL', KEYS[9], field)
  redis.call('HDEL', KEYS[17], field)
end
local round = tonumber(redis.call('GET', KEYS[12]) or '0')
local pround = tonumber(redis.call('HGET', KEYS[13], field) or '0')
local iround = tonumber(redis.call('GET', KEYS[15]) or '0')
local blue, red, unknown, old, kicked = 0, 0, 0, 0, 0
local changed, admin = false, nil

-- count_taps adds the (id, count) pairs ARGV[lo..hi] in chunks of players:
-- one HMGET, one ZMSCORE, one HSET and one ZADD per sorted set each.
local function count_taps(lo, hi)
  local ids, ns, pos = {}, {}, {}
  for k = lo, hi, 2 do
    local id, n = ARGV[k], tonumber(ARGV[k + 1])
    local j = pos[id]
    if j then ns[j] = ns[j] + n else j = #ids + 1; ids[j] = id; ns[j] = n; pos[id] = j end
  end
  for c = 1, #ids, 500 do
    local part = {}
    for k = c, math.min(c + 499, #ids) do part[#part + 1] = ids[k] end
    local us = redis.call('HMGET', KEYS[1], unpack(part))
    local sc = redis.call('ZMSCORE', KEYS[5], unpack(part))
    local hs, lb, ob, orr = {}, {}, {}, {}
    for k = 1, #part do
      local id, n, u = part[k], ns[c + k - 1], us[k]
      if not u then
        -- a kicked player's taps may follow their kick in the log; any
        -- other player the store does not know is an inconsistency
        if redis.call('HEXISTS', KEYS[14], id) == 1 then
          kicked = kicked + n
        else
          unknown = unknown + n
        end
      else
        local total = string.format('%d', (tonumber(sc[k]) or 0) + n)
        local team = string.match(u, '"team":"(%a+)"')
        local patched = set_count(u, total)
        if patched then
          u = patched
        else
          local o = cjson.decode(u)
          o.tapCount = tonumber(total)
          team = o.team
          u = cjson.encode(o)
        end
        hs[#hs + 1] = id; hs[#hs + 1] = u
        lb[#lb + 1] = total; lb[#lb + 1] = id
        if team == 'blue' then
          blue = blue + n
          ob[#ob + 1] = now; ob[#ob + 1] = id
        else
          red = red + n
          orr[#orr + 1] = now; orr[#orr + 1] = id
        end
      end
    end
    if #hs > 0 then
      redis.call('HSET', KEYS[1], unpack(hs))
      redis.call('ZADD', KEYS[5], unpack(lb))
    end
    if #ob > 0 then redis.call('ZADD', KEYS[7], unpack(ob)) end
    if #orr > 0 then redis.call('ZADD', KEYS[8], unpack(orr)) end
  end
end

local function team_keys(team)
  if team == 'blue' then return KEYS[2], KEYS[7] end
  return KEYS[3], KEYS[8]
end

-- kick removes a player: their taps of this round leave the scores, they
-- leave presence and game:users, and a kick record is kept. A partition
-- one round behind takes the taps from the previous round's leaderboard,
-- so the record is the same whichever partition reached the reset first.
local function kick(id, at)
  redis.call('HDEL', 'KEY_KICK_PENDING', id)
  local u = redis.call('HGET', KEYS[1], id)
  if not u then return end
  local team = string.match(u, '"team":"(%a+)"')
  local score, online = team_keys(team)
  local n = 0
  if pround == round then
    n = tonumber(redis.call('ZSCORE', KEYS[5], id) or '0')
    if n > 0 then
      redis.call('DECRBY', score, n)
      redis.call('DECRBY', KEYS[4], n)
    end
  elseif pround == round - 1 then
    n = tonumber(redis.call('ZSCORE', KEYS[16], id) or '0')
  end
  local ns = string.format('%d', n)
  u = set_count(u, ns) or u
  redis.call('ZREM', KEYS[5], id)
  redis.call('ZREM', KEYS[16], id)
  redis.call('ZREM', online, id)
  redis.call('HDEL', KEYS[1], id)
  redis.call('HSET', KEYS[14], id, '{"user":' .. u .. ',"kickedAt":' .. at .. ',"removedTaps":' .. ns .. '}')
  changed, admin = true, 'kick'
end

local i = 6
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'T' then
    local lo = i + 2
    local hi = i + 1 + 2 * tonumber(ARGV[i + 1])
    if pround < round then
      for k = lo, hi, 2 do old = old + tonumber(ARGV[k + 1]) end
    elseif hi >= lo then
      -- Scores change now, not at the end: a marker later in the batch
      -- may zero them.
      local b0, r0 = blue, red
      count_taps(lo, hi)
      if blue > b0 then redis.call('INCRBY', KEYS[2], blue - b0) end
      if red > r0 then redis.call('INCRBY', KEYS[3], red - r0) end
      if blue + red > b0 + r0 then redis.call('INCRBY', KEYS[4], blue + red - b0 - r0) end
    end
    i = hi + 1
  elseif op == 'J' then
    if pround >= iround and redis.call('HSETNX', KEYS[1], ARGV[i + 1], ARGV[i + 2]) == 1 then
      local _, online = team_keys(ARGV[i + 3])
      redis.call('ZADD', online, 'NX', ARGV[i + 4], ARGV[i + 1])
      changed = true
    end
    if pround >= iround then hold_name(KEYS[1], KEYS[22], ARGV[i + 5], ARGV[i + 1]) end
    i = i + 6
  elseif op == 'K' then
    if pround >= iround then kick(ARGV[i + 1], ARGV[i + 2]) end
    i = i + 3
  elseif op == 'R' or op == 'I' then
    local R = tonumber(ARGV[i + 1])
    local sched, width = '', 3
    if op == 'R' then sched, width = ARGV[i + 3], 4 end
    if new_round(R, op == 'I') >= 0 then
      round = R
      if op == 'I' then iround = R; admin = 'import' end
      changed = true
    end
    if R == round then
      if sched ~= '' then redis.call('SET', KEYS[18], sched) else redis.call('DEL', KEYS[18]) end
    end
    if R > pround then
      pround = R
      redis.call('HSET', KEYS[13], field, ARGV[i + 1])
      redis.call('HSET', KEYS[9], field, ARGV[i + 2])
      if sched ~= '' then redis.call('HSET', KEYS[17], field, sched) else redis.call('HDEL', KEYS[17], field) end
    end
    i = i + width
  elseif op == 'W' then
    if redis.call('HSETNX', KEYS[19], ARGV[i + 1], ARGV[i + 2]) == 1 then
      redis.call('ZADD', KEYS[20], ARGV[i + 1], ARGV[i + 1])
      changed = true
    end
    i = i + 3
  elseif op == 'P' then
    if pround >= iround then
      local u, n = ARGV[i + 2], tonumber(ARGV[i + 4])
      if pround < round then
        n = 0
        u = zero_count(u) or u
      end
      redis.call('HSET', KEYS[1], ARGV[i + 1], u)
      hold_name(KEYS[1], KEYS[22], ARGV[i + 5], ARGV[i + 1])
      if n > 0 then
        local score = team_keys(ARGV[i + 3])
        redis.call('ZADD', KEYS[5], n, ARGV[i + 1])
        redis.call('INCRBY', score, n)
        redis.call('INCRBY', KEYS[4], n)
      end
      changed = true
    end
    i = i + 6
  elseif op == 'X' then
    if pround >= iround then
      redis.call('HSET', KEYS[14], ARGV[i + 1], ARGV[i + 2])
      changed, admin = true, admin or 'import'
    end
    i = i + 3
  elseif op == 'N' then
    redis.call('SET', KEYS[21], ARGV[i + 1])
    changed = true
    i = i + 2
  else
    return redis.error_reply('unknown step ' .. tostring(op))
  end
end
if blue + red > 0 then
  -- taps per second for the admin chart: KEYS[11] is the batch's minute
  local sec = math.floor(tonumber(now) / 1000)
  redis.call('HINCRBY', KEYS[11], string.format('%d', sec), blue + red)
  redis.call('EXPIREAT', KEYS[11], string.format('%d', (math.floor(sec / 60) + 1) * 60 + RATE_KEEP_SECONDS))
  changed = true
end
if changed then
  redis.call('SET', KEYS[10], now)
  redis.call('PUBLISH', 'CHANNEL_UPDATES', '1')
end
if admin then redis.call('PUBLISH', 'CHANNEL_ADMIN', admin) end
redis.call('HSET', KEYS[6], field, ARGV[3])
return {0, blue + red, unknown, old, 0, kicked}
`

// luaNames fills in the placeholders of the projection's scripts, so the
// key and channel names live in their Go constants only.
var luaNames = strings.NewReplacer(
	// The chart's per-second counts expire RateKeep after their minute.
	"RATE_KEEP_SECONDS", strconv.FormatInt(int64(RateKeep/time.Second), 10),
	"CHANNEL_UPDATES", ChannelUpdates,
	"CHANNEL_ADMIN", ChannelAdmin,
	"KEY_KICK_PENDING", KeyKickPending,
)

func init() {
	applyScript = redis.NewScript(luaNames.Replace(applyScriptSrc))
	resetScript = redis.NewScript(luaNames.Replace(resetScriptSrc))
}

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
	res, err := applyScript.Run(ctx, s.rdb, projKeys(b.Now), args...).Int64Slice()
	if err != nil {
		return game.ApplyResult{}, fmt.Errorf("apply %s [%d,%d): %w", OffsetField(b.Topic, b.Partition), b.From, b.Next, err)
	}
	if len(res) != 5 && len(res) != 6 {
		return game.ApplyResult{}, fmt.Errorf("apply: unexpected reply %v", res)
	}
	r := game.ApplyResult{Status: game.ApplyStatus(res[0]), Applied: res[1], Unknown: res[2], OldRound: res[3], Offset: res[4]}
	if len(res) == 6 {
		r.Kicked = res[5]
	}
	return r, nil
}

func appendTaps(args []any, taps []game.PlayerTaps) []any {
	args = append(args, "T", len(taps))
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
		op := "J"
		last := any(u.JoinedAt)
		if f.Type == game.FactPlayer {
			op, last = "P", n
		}
		return append(args, op, u.ID, string(raw), string(u.Team), last, nameKeysArg(u.Username)), nil
	case game.FactKick:
		return append(args, "K", f.UserID, f.At), nil
	case game.FactRound:
		sched := ""
		if f.Schedule != nil {
			raw, err := json.Marshal(f.Schedule)
			if err != nil {
				return nil, fmt.Errorf("encode schedule: %w", err)
			}
			sched = string(raw)
		}
		return append(args, "R", f.Round, st.Offset, sched), nil
	case game.FactResult:
		raw, err := json.Marshal(f.Result)
		if err != nil {
			return nil, fmt.Errorf("encode result: %w", err)
		}
		return append(args, "W", f.Result.Round, string(raw)), nil
	case game.FactImport:
		return append(args, "I", f.Round, st.Offset), nil
	case game.FactTeams:
		raw, err := json.Marshal(f.Teams)
		if err != nil {
			return nil, fmt.Errorf("encode teams: %w", err)
		}
		return append(args, "N", string(raw)), nil
	case game.FactKicked:
		raw, err := json.Marshal(KickRecord{User: *f.User, KickedAt: f.At, RemovedTaps: f.RemovedTaps})
		if err != nil {
			return nil, fmt.Errorf("encode kick record: %w", err)
		}
		return append(args, "X", f.User.ID, string(raw)), nil
	}
	return nil, fmt.Errorf("apply: unknown fact type %q", f.Type)
}
