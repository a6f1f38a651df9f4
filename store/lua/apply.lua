-- keys: users, blue_score, red_score, total_taps, leaderboard, offsets, online_blue, online_red, part_starts, updated_at, tap_rate, game_round, part_rounds, kick_records, import_round, prev_leaderboard, part_schedules, round_schedule, round_results, round_index, teams, names, kick_pending
-- then the steps from ARGV[6], each an opcode (op_taps, ...) and its arguments
local field, from, nxt, start, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local cur = redis.call('HGET', offsets, field)
if cur then
  cur = tonumber(cur)
  if cur >= nxt then return {status_duplicate, 0, 0, 0, cur} end
  if cur > from then return {status_overlap, 0, 0, 0, cur} end
  if cur < from and start ~= '1' then return {status_behind, 0, 0, 0, cur} end
elseif start ~= '1' then
  return {status_behind, 0, 0, 0, -1} -- -1: no offset stored
end
-- Every check before the first write: Redis does not roll a script back,
-- so an error after a write would leave the batch half applied.
for _, kt in ipairs(key_types) do
  local k, want = kt[1], kt[2]
  local t = redis.call('TYPE', k).ok
  if t ~= 'none' and t ~= want then
    return redis.error_reply('ERR ' .. k .. ' is a ' .. t .. ', not a ' .. want .. ': nothing of the batch was applied')
  end
end
for _, k in ipairs(number_keys) do
  local v = redis.call('GET', k)
  if v and not string.match(v, '^%-?%d+$') then
    return redis.error_reply('ERR ' .. k .. ' is not a whole number ("' .. string.sub(v, 1, 20) .. '"): nothing of the batch was applied')
  end
end
if not cur then
  -- The partition starts over from its log's start: its round bookkeeping
  -- too (the markers in the log set it again).
  redis.call('HDEL', part_rounds, field)
  redis.call('HDEL', part_starts, field)
  redis.call('HDEL', part_schedules, field)
end
local round = tonumber(redis.call('GET', game_round) or '0')
local pround = tonumber(redis.call('HGET', part_rounds, field) or '0')
local iround = tonumber(redis.call('GET', import_round) or '0')
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
    local us = redis.call('HMGET', users, unpack(part))
    local sc = redis.call('ZMSCORE', leaderboard, unpack(part))
    local hs, lb, ob, orr = {}, {}, {}, {}
    for k = 1, #part do
      local id, n, u = part[k], ns[c + k - 1], us[k]
      if not u then
        -- a kicked player's taps may follow their kick in the log; any
        -- other player the store does not know is an inconsistency
        if redis.call('HEXISTS', kick_records, id) == 1 then
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
      redis.call('HSET', users, unpack(hs))
      redis.call('ZADD', leaderboard, unpack(lb))
    end
    if #ob > 0 then redis.call('ZADD', online_blue, unpack(ob)) end
    if #orr > 0 then redis.call('ZADD', online_red, unpack(orr)) end
  end
end

local function team_keys(team)
  if team == 'blue' then return blue_score, online_blue end
  return red_score, online_red
end

-- kick removes a player: their taps of this round leave the scores, they
-- leave presence and game:users, and a kick record is kept. A partition
-- one round behind takes the taps from the previous round's leaderboard,
-- so the record is the same whichever partition reached the reset first.
local function kick(id, at)
  redis.call('HDEL', kick_pending, id)
  local u = redis.call('HGET', users, id)
  if not u then return end
  local team = string.match(u, '"team":"(%a+)"')
  local score, online = team_keys(team)
  local n = 0
  if pround == round then
    n = tonumber(redis.call('ZSCORE', leaderboard, id) or '0')
    if n > 0 then
      redis.call('DECRBY', score, n)
      redis.call('DECRBY', total_taps, n)
    end
  elseif pround == round - 1 then
    n = tonumber(redis.call('ZSCORE', prev_leaderboard, id) or '0')
  end
  local ns = string.format('%d', n)
  u = set_count(u, ns) or u
  redis.call('ZREM', leaderboard, id)
  redis.call('ZREM', prev_leaderboard, id)
  redis.call('ZREM', online, id)
  redis.call('HDEL', users, id)
  redis.call('HSET', kick_records, id, '{"user":' .. u .. ',"kickedAt":' .. at .. ',"removedTaps":' .. ns .. '}')
  changed, admin = true, 'kick'
end

local i = 6
while i <= #ARGV do
  local op = ARGV[i]
  if op == op_taps then
    local lo = i + 2
    local hi = i + 1 + 2 * tonumber(ARGV[i + 1])
    if pround < round then
      for k = lo, hi, 2 do old = old + tonumber(ARGV[k + 1]) end
    elseif hi >= lo then
      -- Scores change now, not at the end: a marker later in the batch
      -- may zero them.
      local b0, r0 = blue, red
      count_taps(lo, hi)
      if blue > b0 then redis.call('INCRBY', blue_score, blue - b0) end
      if red > r0 then redis.call('INCRBY', red_score, red - r0) end
      if blue + red > b0 + r0 then redis.call('INCRBY', total_taps, blue + red - b0 - r0) end
    end
    i = hi + 1
  elseif op == op_join then
    if pround >= iround and redis.call('HSETNX', users, ARGV[i + 1], ARGV[i + 2]) == 1 then
      local _, online = team_keys(ARGV[i + 3])
      redis.call('ZADD', online, 'NX', ARGV[i + 4], ARGV[i + 1])
      changed = true
    end
    if pround >= iround then hold_name(users, names, ARGV[i + 5], ARGV[i + 1]) end
    i = i + 6
  elseif op == op_kick then
    if pround >= iround then kick(ARGV[i + 1], ARGV[i + 2]) end
    i = i + 3
  elseif op == op_round or op == op_import then
    local R = tonumber(ARGV[i + 1])
    local sched, width = '', 3
    if op == op_round then sched, width = ARGV[i + 3], 4 end
    if new_round(R, op == op_import) ~= not_ahead then
      round = R
      if op == op_import then iround = R; admin = 'import' end
      changed = true
      -- Only the marker that starts the round sets the schedule: a later
      -- partition's marker of the same round must not undo the
      -- announcement of the next one (ledger.RoundView).
      if sched ~= '' then redis.call('SET', round_schedule, sched) else redis.call('DEL', round_schedule) end
      redis.call('PUBLISH', channel_rounds, ARGV[i + 1])
    end
    if R > pround then
      pround = R
      redis.call('HSET', part_rounds, field, ARGV[i + 1])
      redis.call('HSET', part_starts, field, ARGV[i + 2])
      if sched ~= '' then redis.call('HSET', part_schedules, field, sched) else redis.call('HDEL', part_schedules, field) end
    end
    i = i + width
  elseif op == op_result then
    if redis.call('HSETNX', round_results, ARGV[i + 1], ARGV[i + 2]) == 1 then
      redis.call('ZADD', round_index, ARGV[i + 1], ARGV[i + 1])
      changed = true
    end
    i = i + 3
  elseif op == op_player then
    if pround >= iround then
      local u, n = ARGV[i + 2], tonumber(ARGV[i + 4])
      if pround < round then
        n = 0
        u = zero_count(u) or u
      end
      redis.call('HSET', users, ARGV[i + 1], u)
      hold_name(users, names, ARGV[i + 5], ARGV[i + 1])
      if n > 0 then
        local score = team_keys(ARGV[i + 3])
        redis.call('ZADD', leaderboard, n, ARGV[i + 1])
        redis.call('INCRBY', score, n)
        redis.call('INCRBY', total_taps, n)
      end
      changed = true
    end
    i = i + 6
  elseif op == op_kicked then
    if pround >= iround then
      redis.call('HSET', kick_records, ARGV[i + 1], ARGV[i + 2])
      changed, admin = true, admin or 'import'
    end
    i = i + 3
  elseif op == op_teams then
    redis.call('SET', teams, ARGV[i + 1])
    changed = true
    i = i + 2
  else
    return redis.error_reply('unknown step ' .. tostring(op))
  end
end
if blue + red > 0 then
  -- taps per second for the admin chart: tap_rate is the batch's minute
  local sec = math.floor(tonumber(now) / 1000)
  redis.call('HINCRBY', tap_rate, string.format('%d', sec), blue + red)
  redis.call('EXPIREAT', tap_rate, string.format('%d', (math.floor(sec / 60) + 1) * 60 + rate_keep_seconds))
  changed = true
end
if changed then
  redis.call('SET', updated_at, now)
  redis.call('PUBLISH', channel_updates, '1')
end
if admin then redis.call('PUBLISH', channel_admin, admin) end
redis.call('HSET', offsets, field, ARGV[3])
-- what the batch left of the partition's round: its number and schedule
-- ('' in open play), so the consumer counts the next batch by it
return {status_applied, blue + red, unknown, old, 0, kicked, pround, redis.call('HGET', part_schedules, field) or ''}
