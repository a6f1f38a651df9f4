package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/game"
)

// applyScript counts a batch of taps, aggregated per player, and stores the
// partition's next offset in the same atomic step. It refuses a batch whose
// records were (partly) counted before, or that was filtered with an
// outdated round start, and says why, so the caller can refilter. Taps of
// unknown players are skipped and reported. The team always comes from the
// stored user, never from the event.
//
// KEYS: users, blue score, red score, total, leaderboard, offsets,
//
//	online:blue, online:red, round starts, updated, taps-per-second of
//	the batch's minute (game:tps:<minute>)
//
// ARGV: offset field, from, next, round start seen, now, then (id, count)...
// Returns {status, applied, unknown, offset-or-round-start}.
var applyScript *redis.Script

const applyScriptSrc = `
local cur = redis.call('HGET', KEYS[6], ARGV[1])
if cur then
  cur = tonumber(cur)
  if cur >= tonumber(ARGV[3]) then return {1, 0, 0, cur} end
  if cur > tonumber(ARGV[2]) then return {2, 0, 0, cur} end
end
local rs = tonumber(redis.call('HGET', KEYS[9], ARGV[1]) or '-1')
if rs ~= tonumber(ARGV[4]) then return {3, 0, 0, rs} end
-- Sum per player (the caller aggregates already; this keeps a repeated id exact).
local ids, ns, pos = {}, {}, {}
local sum = 0
for i = 6, #ARGV, 2 do
  local id = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  sum = sum + n
  local j = pos[id]
  if j then ns[j] = ns[j] + n else j = #ids + 1; ids[j] = id; ns[j] = n; pos[id] = j end
end
-- Every check before the first write: Redis does not roll a script back,
-- so an error after a write would leave the batch half counted.
for _, k in ipairs({KEYS[2], KEYS[3], KEYS[4]}) do
  local v = redis.call('GET', k)
  if v then
    if not string.match(v, '^%-?%d+$') then
      return redis.error_reply('ERR ' .. k .. ' is not a whole number ("' .. string.sub(v, 1, 20) .. '"): nothing of the batch was applied')
    end
    if tonumber(v) + sum > MAX_COUNT then
      return redis.error_reply('ERR ' .. k .. ' would pass 2^53: nothing of the batch was applied')
    end
  end
end
for k, want in pairs({[1] = 'hash', [5] = 'zset', [7] = 'zset', [8] = 'zset', [11] = 'hash'}) do
  local t = redis.call('TYPE', KEYS[k]).ok
  if t ~= 'none' and t ~= want then
    return redis.error_reply('ERR ' .. KEYS[k] .. ' is a ' .. t .. ', not a ' .. want .. ': nothing of the batch was applied')
  end
end
-- Chunks of players: one HMGET, one ZMSCORE, one HSET and one ZADD per
-- sorted set each, instead of four or five calls per player.
local blue, red, unknown = 0, 0, 0
local now = ARGV[5]
local chunk = 500
for lo = 1, #ids, chunk do
  local hi = math.min(lo + chunk - 1, #ids)
  local part = {}
  for k = lo, hi do part[#part + 1] = ids[k] end
  local us = redis.call('HMGET', KEYS[1], unpack(part))
  local sc = redis.call('ZMSCORE', KEYS[5], unpack(part))
  local hs, lb, ob, orr = {}, {}, {}, {}
  for k = 1, #part do
    local id, n, u = part[k], ns[lo + k - 1], us[k]
    if not u then
      unknown = unknown + n
    else
      local total = string.format('%d', (tonumber(sc[k]) or 0) + n)
      local team = string.match(u, '"team":"(%a+)"')
      local patched, hits = string.gsub(u, '"tapCount":%-?[%d%.e%+]+}$', '"tapCount":' .. total .. '}')
      if hits == 1 then
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
if blue > 0 then redis.call('INCRBY', KEYS[2], blue) end
if red > 0 then redis.call('INCRBY', KEYS[3], red) end
if blue + red > 0 then
  redis.call('INCRBY', KEYS[4], blue + red)
  redis.call('SET', KEYS[10], ARGV[5])
  -- taps per second for the admin chart: KEYS[11] is the batch's minute
  local sec = math.floor(tonumber(ARGV[5]) / 1000)
  redis.call('HINCRBY', KEYS[11], string.format('%d', sec), blue + red)
  redis.call('EXPIREAT', KEYS[11], string.format('%d', (math.floor(sec / 60) + 1) * 60 + RATE_KEEP_SECONDS))
end
redis.call('HSET', KEYS[6], ARGV[1], ARGV[3])
return {0, blue + red, unknown, 0}
`

var applyKeys = []string{KeyUsers, KeyBlueScore, KeyRedScore, KeyTotalTaps, KeyLeaderboard,
	KeyOffsets, KeyOnlineBlue, KeyOnlineRed, KeyRoundStarts, KeyUpdatedAt}

func init() {
	// The chart's per-second counts expire RateKeep after their minute.
	src := strings.Replace(applyScriptSrc, "RATE_KEEP_SECONDS", strconv.FormatInt(int64(RateKeep/time.Second), 10), 1)
	applyScript = redis.NewScript(strings.ReplaceAll(src, "MAX_COUNT", strconv.FormatInt(game.MaxCount, 10)))
}

// Apply counts a batch atomically with its offsets. See game.ApplyStatus for
// the outcomes other than Applied; none of them changes anything.
func (s *Store) Apply(ctx context.Context, b game.Batch) (game.ApplyResult, error) {
	args := make([]any, 0, 5+2*len(b.Taps))
	args = append(args, OffsetField(b.Topic, b.Partition), b.From, b.Next, b.Seen, b.Now)
	for _, t := range b.Taps {
		args = append(args, t.UserID, strconv.FormatInt(t.Count, 10))
	}
	keys := append(applyKeys[:len(applyKeys):len(applyKeys)], rateKey(b.Now/1000))
	res, err := applyScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return game.ApplyResult{}, fmt.Errorf("apply %s [%d,%d): %w", OffsetField(b.Topic, b.Partition), b.From, b.Next, err)
	}
	if len(res) != 4 {
		return game.ApplyResult{}, fmt.Errorf("apply: unexpected reply %v", res)
	}
	r := game.ApplyResult{Status: game.ApplyStatus(res[0]), Applied: res[1], Unknown: res[2]}
	switch r.Status {
	case game.Duplicate, game.Overlap:
		r.Offset = res[3]
	case game.NewRound:
		r.RoundStart = res[3]
	}
	return r, nil
}
