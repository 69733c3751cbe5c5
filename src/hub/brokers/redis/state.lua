-- state.lua (after helpers.lua): optionally registers a member (HSET, and SADD of the room to
-- its worker's set), then reads the room's state: {seq, members (the live ones, or every
-- field above 1000: a join stays O(1) in a big room), first kept seq, gap (0/1), messages
-- after since}.
-- KEYS: seq, hist, presence, the worker's room set. ARGV: field ('' = none), name, since
-- ('-1' = none), limit (0 = all), room, history age (ms, 0 = none), now (ms).
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
  redis.call('SADD', KEYS[4], ARGV[5])
end
trim(KEYS[2], 0, tonumber(ARGV[6]), tonumber(ARGV[7]))
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = redis.call('HLEN', KEYS[3])
if n <= 1000 then n = #live(KEYS[3]) end
local f = seq + 1
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #first > 0 then f = tonumber(first[2]) end
if ARGV[3] == '-1' then return {seq, n, f, 0, {}} end
local since = tonumber(ARGV[3])
if since > seq or since + 1 < f then return {seq, n, f, 1, {}} end
local lim = tonumber(ARGV[4])
local msgs
if lim > 0 then
  msgs = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[3], '+inf', 'LIMIT', 0, lim)
else
  msgs = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[3], '+inf')
end
return {seq, n, f, 0, msgs}
