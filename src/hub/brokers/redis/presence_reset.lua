-- presence_reset.lua: removes a worker's presence fields (prefix ARGV[1]) from every room of
-- its set, then the set. KEYS: the worker's room set.
for _, r in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local k = 'weft:presence:' .. r
  local cur = '0'
  repeat
    local res = redis.call('HSCAN', k, cur, 'MATCH', ARGV[1] .. '*', 'COUNT', 100)
    cur = res[1]
    for i = 1, #res[2], 2 do redis.call('HDEL', k, res[2][i]) end
  until cur == '0'
end
redis.call('DEL', KEYS[1])
return 0
