-- keys: users, blue_score, red_score, total_taps, leaderboard, online_blue, online_red, updated_at, game_round, kick_records, import_round, prev_leaderboard, round_schedule, names
local zeroed = new_round(tonumber(ARGV[1]), false)
if zeroed ~= not_ahead then
  if ARGV[3] ~= '' then redis.call('SET', round_schedule, ARGV[3]) else redis.call('DEL', round_schedule) end
  redis.call('SET', updated_at, ARGV[2])
  redis.call('PUBLISH', channel_updates, '1')
end
return {tonumber(redis.call('GET', game_round) or '0'), zeroed}
