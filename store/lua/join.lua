-- keys: users, online_blue, online_red, names
if name_holder(users, names, ARGV[8], ARGV[1]) then return 'taken' end
redis.call('ZREMRANGEBYSCORE', online_blue, '-inf', '(' .. ARGV[6])
redis.call('ZREMRANGEBYSCORE', online_red, '-inf', '(' .. ARGV[6])
local b = redis.call('ZCARD', online_blue)
local r = redis.call('ZCARD', online_red)
local team
if b < r then team = 'blue' elseif r < b then team = 'red' elseif ARGV[7] == '1' then team = 'blue' else team = 'red' end
local u = '{"id":"' .. ARGV[1] .. '","username":' .. ARGV[2] .. ',"team":"' .. team ..
  '","joinedAt":' .. ARGV[3] .. ',"sessionId":"' .. ARGV[4] .. '","tapCount":0}'
if redis.call('HSETNX', users, ARGV[1], u) == 0 then
  return redis.error_reply('id taken')
end
if team == 'blue' then redis.call('ZADD', online_blue, ARGV[5], ARGV[1]) else redis.call('ZADD', online_red, ARGV[5], ARGV[1]) end
hold_name(users, names, ARGV[8], ARGV[1])
return u
