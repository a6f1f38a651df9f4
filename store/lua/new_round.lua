-- new_round starts round R if it is ahead of game_round: scores and total
-- to zero; for a round, every player who tapped gets tapCount 0 and the
-- leaderboard becomes the previous one; for an import (imp), players,
-- presence, leaderboards and kicked players are deleted (the import's
-- player records follow). Returns the players zeroed, or not_ahead if R is
-- not ahead. The first reset (round 0) checks every player once, for players
-- written by the old game, which had no leaderboard. This file also holds
-- set_count, shared by the scripts that rewrite a player's tapCount.
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
local not_ahead = -1
local function new_round(R, imp)
  local round = tonumber(redis.call('GET', game_round) or '0')
  if R <= round then return not_ahead end
  redis.call('SET', game_round, string.format('%d', R))
  redis.call('SET', blue_score, '0')
  redis.call('SET', red_score, '0')
  redis.call('SET', total_taps, '0')
  if imp then
    redis.call('DEL', users, leaderboard, online_blue, online_red, kick_records, prev_leaderboard, names)
    redis.call('SET', import_round, string.format('%d', R))
    return 0
  end
  local ids
  if round == 0 then ids = redis.call('HKEYS', users) else ids = redis.call('ZRANGE', leaderboard, 0, -1) end
  local zeroed = 0
  for lo = 1, #ids, 500 do
    local part = {}
    for k = lo, math.min(lo + 499, #ids) do part[#part + 1] = ids[k] end
    local us = redis.call('HMGET', users, unpack(part))
    local hs = {}
    for k = 1, #part do
      local p = us[k] and zero_count(us[k])
      if p then hs[#hs + 1] = part[k]; hs[#hs + 1] = p; zeroed = zeroed + 1 end
    end
    if #hs > 0 then redis.call('HSET', users, unpack(hs)) end
  end
  if redis.call('EXISTS', leaderboard) == 1 then
    redis.call('RENAME', leaderboard, prev_leaderboard)
  else
    redis.call('DEL', prev_leaderboard)
  end
  return zeroed
end
