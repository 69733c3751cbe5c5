-- helpers.lua: prepended to publish.lua, state.lua, presence.lua and writeback.lua.
-- trim(k, n, age, now): keeps the n (0 = no limit) highest seqs of history k and drops,
-- oldest first, deliveries whose trailing "ts" is more than age ms (0 = no limit) before now.
-- live(k): the display names of presence hash k whose worker's liveness key
-- weft:node:NODEID:WORKER exists; fields of the others are deleted.
local function trim(k, n, age, now)
  if n > 0 then redis.call('ZREMRANGEBYRANK', k, 0, -n - 1) end
  if age > 0 then
    while true do
      local o = redis.call('ZRANGE', k, 0, 0)
      if #o == 0 then break end
      local t = tonumber(string.match(o[1], '"ts":(%d+)}$'))
      if t == nil or t + age >= now then break end
      redis.call('ZREMRANGEBYRANK', k, 0, 0)
    end
  end
end
local function live(k)
  local all = redis.call('HGETALL', k)
  local ok, vals = {}, {}
  for i = 1, #all, 2 do
    local w = string.match(all[i], '^([^:]+:[^:]+):') or ''
    if ok[w] == nil then ok[w] = redis.call('EXISTS', 'weft:node:' .. w) == 1 end
    if ok[w] then vals[#vals + 1] = all[i + 1] else redis.call('HDEL', k, all[i]) end
  end
  return vals
end
