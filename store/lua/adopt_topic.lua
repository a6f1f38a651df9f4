-- keys: offsets
if redis.call('EXISTS', offsets) == 0 then return 0 end
return redis.call('HSETNX', offsets, ARGV[1], ARGV[2])
