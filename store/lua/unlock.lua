-- keys: markers_lock
if redis.call('GET', markers_lock) == ARGV[1] then return redis.call('DEL', markers_lock) end
return 0
