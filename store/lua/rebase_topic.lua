-- keys: offsets, part_rounds, part_starts, part_schedules, game_round, round_schedule
-- then (partition, start)* from ARGV[4]
local topic, old_id, new_id = ARGV[1], ARGV[2], ARGV[3]
local idf = topic .. '#id'
if (redis.call('HGET', offsets, idf) or '') ~= old_id then return 0 end
local prefix = topic .. '/'
for _, f in ipairs(redis.call('HKEYS', offsets)) do
  if string.sub(f, 1, #prefix) == prefix then
    redis.call('HDEL', offsets, f)
    redis.call('HDEL', part_rounds, f)
    redis.call('HDEL', part_starts, f)
    redis.call('HDEL', part_schedules, f)
  end
end
local round = redis.call('GET', game_round) or '0'
local sched = redis.call('GET', round_schedule)
if sched and not string.find(sched, '"number":' .. round .. '[,}]') then sched = nil end
for i = 4, #ARGV, 2 do
  local f = prefix .. ARGV[i]
  redis.call('HSET', offsets, f, ARGV[i + 1])
  redis.call('HSET', part_rounds, f, round)
  redis.call('HSET', part_starts, f, ARGV[i + 1])
  if sched then redis.call('HSET', part_schedules, f, sched) end
end
redis.call('HSET', offsets, idf, new_id)
return 1
