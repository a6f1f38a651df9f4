-- keys: round_views, round_seen, game_round, round_schedule, kick_epoch
-- An instance's heartbeat: it stays registered until Redis time + lease,
-- records the view it has switched to (seen: "stamp/kicks"), forgets
-- instances whose registration ended, and reads the current round, its
-- schedule and the kick epoch.
local id, lease_ms, seen = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ended = redis.call('ZRANGEBYSCORE', round_views, '-inf', '(' .. now)
for _, gone in ipairs(ended) do redis.call('HDEL', round_seen, gone) end
if #ended > 0 then redis.call('ZREMRANGEBYSCORE', round_views, '-inf', '(' .. now) end
redis.call('ZADD', round_views, now + lease_ms, id)
redis.call('HSET', round_seen, id, seen)
return {redis.call('GET', game_round) or '0', redis.call('GET', round_schedule) or '', redis.call('GET', kick_epoch) or '0'}
