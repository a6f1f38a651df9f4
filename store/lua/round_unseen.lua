-- keys: round_views, round_seen
-- The registered instances whose view is stamped before ARGV[1] or has
-- seen fewer kicks than ARGV[2] (seen: "stamp/kicks").
local stamp, kicks = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', round_views, now, '+inf')) do
  local s, k = string.match(redis.call('HGET', round_seen, id) or '', '^(%d+)/(%d+)$')
  if not s or tonumber(s) < stamp or tonumber(k) < kicks then out[#out + 1] = id end
end
return out
