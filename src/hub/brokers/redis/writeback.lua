-- writeback.lua (after helpers.lua): the write-back after a reconnect. Raises the seq to at
-- least the local one, then keeps and publishes (tagged) the deliveries numbered during the
-- outage.
-- KEYS: seq, hist. ARGV: local seq, history size, history age (ms), now (ms), channel, node
-- tag, then seq and delivery of each message, oldest first. Returns the seq Redis had.
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
local n = tonumber(ARGV[2])
for i = 7, #ARGV - 1, 2 do
  if n > 0 then redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1]) end
  redis.call('PUBLISH', ARGV[5], ARGV[6] .. ARGV[i + 1])
end
if n > 0 then trim(KEYS[2], n, tonumber(ARGV[3]), tonumber(ARGV[4])) end
return cur
