-- keys: users, online_blue, online_red, names
local id, name_json, joined_at, session, now, stale_before, coin, name_keys = unpack(ARGV)
if name_holder(users, names, name_keys, id) then return 'taken' end
redis.call('ZREMRANGEBYSCORE', online_blue, '-inf', '(' .. stale_before)
redis.call('ZREMRANGEBYSCORE', online_red, '-inf', '(' .. stale_before)
local b = redis.call('ZCARD', online_blue)
local r = redis.call('ZCARD', online_red)
local team
if b < r then team = 'blue' elseif r < b then team = 'red' elseif coin == '1' then team = 'blue' else team = 'red' end
local u = '{"id":"' .. id .. '","username":' .. name_json .. ',"team":"' .. team ..
  '","joinedAt":' .. joined_at .. ',"sessionId":"' .. session .. '","tapCount":0}'
if redis.call('HSETNX', users, id, u) == 0 then
  return redis.error_reply('id taken')
end
if team == 'blue' then redis.call('ZADD', online_blue, now, id) else redis.call('ZADD', online_red, now, id) end
hold_name(users, names, name_keys, id)
return u
