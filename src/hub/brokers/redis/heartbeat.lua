-- heartbeat.lua: the heartbeat of a worker; refreshes its liveness key and its room set.
-- KEYS: liveness key, room set. ARGV: TTL (ms). Returns 1 if the liveness key still existed,
-- 0 if it had expired (readers may have deleted the worker's presence fields).
local had = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return had
