-- publish.lua (after helpers.lua): INCR the seq, keep the delivery (prefix .. seq .. suffix)
-- in the capped sorted set, and publish it tagged with the node id.
-- KEYS: seq, hist. ARGV: prefix, suffix, history size, channel, node tag, history age (ms,
-- 0 = none), now (ms). Returns the seq.
local s = redis.call('INCR', KEYS[1])
local m = ARGV[1] .. s .. ARGV[2]
local n = tonumber(ARGV[3])
if n > 0 then
  redis.call('ZADD', KEYS[2], s, m)
  trim(KEYS[2], n, tonumber(ARGV[6]), tonumber(ARGV[7]))
end
redis.call('PUBLISH', ARGV[4], ARGV[5] .. m)
return s
