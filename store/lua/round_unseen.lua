-- keys: round_views, round_seen
-- The registered instances whose view is stamped before ARGV[1].
local stamp = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', round_views, now, '+inf')) do
  if tonumber(redis.call('HGET', round_seen, id) or '0') < stamp then out[#out + 1] = id end
end
return out
