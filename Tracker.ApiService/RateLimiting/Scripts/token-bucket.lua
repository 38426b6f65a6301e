-- Token buckets, one request per entry of KEYS, in order (a key repeated once per queued request of its partition).
-- Each bucket is read and written once per call; its requests are decided one after another against the state in
-- between. Time is Redis's own.
--
-- ARGV: capacity, tokens_per_ms, lease_ms, long_lease_ms, then four per request, in the order of KEYS:
--   cost      tokens the request spends now: all of them, or none and it is refused (0 for a refill ahead of requests)
--   hold      tokens its instance would hold for the partition's next requests: granted once the cost is paid, at
--             most half of what the cost left, so instances sharing a nearly empty bucket take ever smaller shares
--   returned  tokens its instance held but no longer spends, handed back first
--   long      1 when the tokens are to be held for long_lease_ms (a slow key's), 0 for lease_ms
-- Returns, per request: allowed (1 or 0), tokens granted to hold, tokens left (a string: Lua numbers become
-- integers on the way out).
--
-- Tokens granted to hold still count against the burst while an instance may hold them (a lease from the grant;
-- the instance drops them sooner): the bucket refills only up to the capacity less the tokens granted in the current
-- and the previous lease-long window, so held tokens never add to a bucket that refilled meanwhile. Short and long
-- leases are counted apart, each in windows of its own length.
local capacity = tonumber(ARGV[1])
local tokens_per_ms = tonumber(ARGV[2])
local leases = { short = tonumber(ARGV[3]), long = tonumber(ARGV[4]) }
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

-- Tokens granted in the current and the previous window of one lease length, the current one starting at since.
local function held_for(held, held_before, since, lease_ms)
  local counted = { held = tonumber(held) or 0, before = tonumber(held_before) or 0, since = tonumber(since) or now }
  if now >= counted.since + 2 * lease_ms then
    counted.held, counted.before, counted.since = 0, 0, now
  elseif now >= counted.since + lease_ms then
    counted.held, counted.before, counted.since = 0, counted.held, counted.since + lease_ms
  end
  return counted
end

local function held_ceiling(bucket)
  return capacity - bucket.short.held - bucket.short.before - bucket.long.held - bucket.long.before
end

local function load(key)
  local state = redis.call('HMGET', key, 'tokens', 'at', 'leased', 'leased_before', 'leased_since',
    'long_leased', 'long_leased_before', 'long_leased_since')
  local tokens, at = tonumber(state[1]), tonumber(state[2])
  if tokens == nil then
    tokens, at = capacity, now
  end
  local bucket = {
    short = held_for(state[3], state[4], state[5], leases.short),
    long = held_for(state[6], state[7], state[8], leases.long),
  }
  -- Held tokens stop the refill short of the capacity but take nothing away; nothing stays above the capacity,
  -- which a bucket filled under a larger burst (before the limit was lowered) would otherwise keep.
  local ceiling = math.min(capacity, math.max(tokens, held_ceiling(bucket)))
  bucket.tokens = math.min(ceiling, tokens + math.max(0, now - at) * tokens_per_ms)
  return bucket
end

local buckets = {}
local results = {}
for i, key in ipairs(KEYS) do
  local bucket = buckets[key]
  if bucket == nil then
    bucket = load(key)
    buckets[key] = bucket
  end

  local argument = 4 + 4 * (i - 1)
  local cost = tonumber(ARGV[argument + 1])
  local hold = tonumber(ARGV[argument + 2])
  local returned = tonumber(ARGV[argument + 3])
  local lease = tonumber(ARGV[argument + 4]) == 1 and bucket.long or bucket.short

  if returned > 0 then
    -- Still counted as held until their window ages out, which can only leave the bucket lower than exact.
    bucket.tokens = math.max(bucket.tokens, math.min(bucket.tokens + returned, held_ceiling(bucket)))
  end

  local allowed, granted = 0, 0
  if bucket.tokens >= cost then
    allowed = 1
    bucket.tokens = bucket.tokens - cost
    granted = math.min(hold, math.floor(bucket.tokens / 2))
    bucket.tokens = bucket.tokens - granted
    lease.held = lease.held + granted
  end
  results[3 * i - 2] = allowed
  results[3 * i - 1] = granted
  results[3 * i] = tostring(bucket.tokens)
end

for key, bucket in pairs(buckets) do
  redis.call('HSET', key, 'tokens', tostring(bucket.tokens), 'at', now,
    'leased', bucket.short.held, 'leased_before', bucket.short.before, 'leased_since', bucket.short.since,
    'long_leased', bucket.long.held, 'long_leased_before', bucket.long.before, 'long_leased_since', bucket.long.since)
  redis.call('PEXPIRE', key, math.ceil(capacity / tokens_per_ms) + 2 * math.max(leases.short, leases.long) + 1000)
end
return results
