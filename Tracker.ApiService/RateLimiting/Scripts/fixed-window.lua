-- Fixed windows, one request per entry of KEYS, in order (a key repeated once per queued request of its partition).
-- Each window is read and written once per call; its requests are decided one after another against the count in
-- between. The first request of a window starts it: the key expires when the window ends. Time is Redis's own.
--
-- ARGV: limit, window_ms, then four per request, in the order of KEYS:
--   cost      permits the request takes now (1; 0 for a refill ahead of requests): all of them, or none and it is
--             refused (a refusal counts nothing)
--   hold      permits its instance would hold for the partition's next requests: granted once the cost is paid, at
--             most half of what the cost left, so instances sharing a nearly spent window take ever smaller shares
--   returned  permits its instance held but no longer spends, handed back first
--   window    the end of the window those permits were taken from (Redis milliseconds, as returned below): they go
--             back only to that window. A later window ends at least window_ms later, so one half of it tells them
--             apart whatever the rounding of PTTL.
-- Returns, per request: allowed (1 or 0), permits granted to hold, permits left, milliseconds until the window
-- ends, and the window's end.
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local function load(key)
  local count = tonumber(redis.call('GET', key))
  local ttl = redis.call('PTTL', key)
  if count == nil or ttl < 0 then
    return { count = 0, stored = nil, ttl = window_ms, ends = now + window_ms }
  end
  return { count = count, stored = count, ttl = ttl, ends = now + ttl }
end

local windows = {}
local results = {}
for i, key in ipairs(KEYS) do
  local window = windows[key]
  if window == nil then
    window = load(key)
    windows[key] = window
  end

  local argument = 2 + 4 * (i - 1)
  local cost = tonumber(ARGV[argument + 1])
  local hold = tonumber(ARGV[argument + 2])
  local returned = tonumber(ARGV[argument + 3])
  local returned_window = tonumber(ARGV[argument + 4])

  if returned > 0 and math.abs(returned_window - window.ends) < window_ms / 2 then
    window.count = math.max(0, window.count - returned)
  end

  local allowed, granted = 0, 0
  if window.count + cost <= limit then
    allowed = 1
    window.count = window.count + cost
    granted = math.min(hold, math.floor((limit - window.count) / 2))
    window.count = window.count + granted
  end
  local base = 5 * (i - 1)
  results[base + 1] = allowed
  results[base + 2] = granted
  results[base + 3] = limit - window.count
  results[base + 4] = window.ttl
  results[base + 5] = window.ends
end

for key, window in pairs(windows) do
  if window.stored == nil then
    if window.count > 0 then
      redis.call('SET', key, window.count, 'PX', window_ms)
    end
  elseif window.count ~= window.stored then
    redis.call('SET', key, window.count, 'KEEPTTL')
  end
end
return results
