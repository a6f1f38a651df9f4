-- keys: offsets, part_rounds, part_starts, part_schedules, game_round, round_schedule
local idf = ARGV[1] .. '#id'
if (redis.call('HGET', offsets, idf) or '') ~= ARGV[2] then return 0 end
local prefix = ARGV[1] .. '/'
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
redis.call('HSET', offsets, idf, ARGV[3])
return 1
