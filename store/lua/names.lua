-- Names are unique among the current players: names maps each name key
-- (game.NameKeys; a script gets a name's keys as one argument, "\n"
-- between them) to the player who took it. A key whose player is no longer
-- in users (kicked, a join undone, replaced by an import) is free, so
-- nothing needs removing when a player goes.
-- name_holder returns another current player holding one of keys, or nil.
local function name_holder(users, names, keys, id)
  for key in string.gmatch(keys, '[^\n]+') do
    local h = redis.call('HGET', names, key)
    if h and h ~= id and redis.call('HEXISTS', users, h) == 1 then return h end
  end
  return nil
end
-- hold_name gives id the keys that no other current player holds (in a
-- replay of the log, the first join of a name keeps it).
local function hold_name(users, names, keys, id)
  for key in string.gmatch(keys, '[^\n]+') do
    local h = redis.call('HGET', names, key)
    if not h or h == id or redis.call('HEXISTS', users, h) == 0 then redis.call('HSET', names, key, id) end
  end
end
