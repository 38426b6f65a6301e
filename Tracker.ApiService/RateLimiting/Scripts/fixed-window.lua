-- Fixed windows, one request per entry of KEYS, in order (a key repeated once per queued request of its partition).
-- The first request of a window sets its expiry. A key repeated n times costs one INCRBY of n, its requests counting
-- up from where the key stood, as n INCRs in a row would.
--
-- ARGV: window_ms
-- Returns, per request: count in its window after it, milliseconds until the window ends.
local window_ms = tonumber(ARGV[1])

local occurrences = {}
for _, key in ipairs(KEYS) do
  occurrences[key] = (occurrences[key] or 0) + 1
end

local counts = {}
local ttls = {}
for key, n in pairs(occurrences) do
  local total = redis.call('INCRBY', key, n)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, window_ms)
    ttl = window_ms
  end
  counts[key] = total - n
  ttls[key] = ttl
end

local results = {}
for i, key in ipairs(KEYS) do
  counts[key] = counts[key] + 1
  results[2 * i - 1] = counts[key]
  results[2 * i] = ttls[key]
end
return results
