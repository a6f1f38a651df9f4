-- keys: users, blue_score, red_score, total_taps, leaderboard, online_blue, online_red, updated_at, game_round, kick_records, import_round, prev_leaderboard, round_schedule, names
local round, now, sched = ARGV[1], ARGV[2], ARGV[3]
local zeroed = new_round(tonumber(round), false)
if zeroed ~= not_ahead then
  if sched ~= '' then redis.call('SET', round_schedule, sched) else redis.call('DEL', round_schedule) end
  redis.call('SET', updated_at, now)
  redis.call('PUBLISH', channel_updates, '1')
  redis.call('PUBLISH', channel_rounds, round)
end
return {tonumber(redis.call('GET', game_round) or '0'), zeroed}
