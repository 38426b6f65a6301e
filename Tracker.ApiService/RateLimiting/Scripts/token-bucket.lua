-- Token buckets, one request per entry of KEYS, in order (a key repeated once per queued request of its partition).
-- Each bucket is read and written once per call; its requests are decided one after another against the state in
-- between. Time is Redis's own.
--
-- ARGV: capacity, tokens_per_ms, then the three lease lengths in ms (busy, slow and quiet keys'; quiet may be 0 when
-- no instance asks for it), then four per request, in the order of KEYS:
--   cost      tokens the request spends now: all of them, or none and it is refused (0 for a refill ahead of requests)
--   hold      tokens its instance would hold for the partition's next requests: granted once the cost is paid, at
--             most half of what the cost left, so instances sharing a nearly empty bucket take ever smaller shares
--   returned  tokens its instance held but no longer spends, handed back first
--   lease     how long the tokens are to be held: 0 for the busy keys' lease, 1 for the slow keys', 2 for the quiet
--             keys'. A quiet lease is granted only while the quiet leases of the key, all instances together, count
--             at most an eighth of the capacity as held; past that the tokens are granted for the slow keys' lease
--             instead, what was asked scaled down to that shorter lease.
-- Returns, per request: allowed (1 or 0), tokens granted to hold, tokens left (a string: Lua numbers become
-- integers on the way out), and the lease the tokens were granted for (0, 1 or 2).
--
-- Tokens granted to hold still count against the burst while an instance may hold them (a lease from the grant;
-- the instance drops them sooner): the bucket refills only up to the capacity less the tokens granted in the current
-- and the previous lease-long window, so held tokens never add to a bucket that refilled meanwhile. Each lease is
-- counted apart, in windows of its own length: the longest any caller brought while the key lived, kept in the key,
-- so that an instance with shorter (or no) leases, during a rolling change of settings, does not age out what
-- another still holds.
local capacity = tonumber(ARGV[1])
local tokens_per_ms = tonumber(ARGV[2])
local lengths = { tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]) }
local quiet_share = math.floor(capacity / 8)
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

local function counted(lease)
  return lease.held + lease.before
end

local function held_ceiling(bucket)
  return capacity - counted(bucket.leases[1]) - counted(bucket.leases[2]) - counted(bucket.leases[3])
end

local function load(key)
  local state = redis.call('HMGET', key, 'tokens', 'at', 'leased', 'leased_before', 'leased_since',
    'long_leased', 'long_leased_before', 'long_leased_since', 'quiet_leased', 'quiet_leased_before', 'quiet_leased_since',
    'lease_ms', 'long_lease_ms', 'quiet_lease_ms')
  local tokens, at = tonumber(state[1]), tonumber(state[2])
  if tokens == nil then
    tokens, at = capacity, now
  end
  local counted_for = {
    math.max(lengths[1], tonumber(state[12]) or 0),
    math.max(lengths[2], tonumber(state[13]) or 0),
    math.max(lengths[3], tonumber(state[14]) or 0),
  }
  local bucket = { counted_for = counted_for, leases = {
    held_for(state[3], state[4], state[5], counted_for[1]),
    held_for(state[6], state[7], state[8], counted_for[2]),
    held_for(state[9], state[10], state[11], counted_for[3]),
  } }
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

  local argument = 5 + 4 * (i - 1)
  local cost = tonumber(ARGV[argument + 1])
  local hold = tonumber(ARGV[argument + 2])
  local returned = tonumber(ARGV[argument + 3])
  local lease = tonumber(ARGV[argument + 4])

  if returned > 0 then
    -- Still counted as held until their window ages out, which can only leave the bucket lower than exact.
    bucket.tokens = math.max(bucket.tokens, math.min(bucket.tokens + returned, held_ceiling(bucket)))
  end

  local allowed, granted = 0, 0
  if bucket.tokens >= cost then
    allowed = 1
    bucket.tokens = bucket.tokens - cost
    granted = math.min(hold, math.floor(bucket.tokens / 2))
    if lease == 2 and (lengths[3] <= lengths[2] or counted(bucket.leases[3]) + granted > quiet_share) then
      -- Every instance serving a quiet key judges it quiet on its own: past the quiet leases' share of the burst,
      -- they hold its tokens for the slow keys' shorter lease, what they asked for scaled down to it.
      lease = 1
      granted = math.min(math.ceil(hold * lengths[2] / math.max(lengths[2], lengths[3])), math.floor(bucket.tokens / 2))
    end
    bucket.tokens = bucket.tokens - granted
    local counting = bucket.leases[lease + 1]
    counting.held = counting.held + granted
  end
  results[4 * i - 3] = allowed
  results[4 * i - 2] = granted
  results[4 * i - 1] = tostring(bucket.tokens)
  results[4 * i] = lease
end

for key, bucket in pairs(buckets) do
  local busy, slow, quiet = bucket.leases[1], bucket.leases[2], bucket.leases[3]
  local counted_for = bucket.counted_for
  redis.call('HSET', key, 'tokens', tostring(bucket.tokens), 'at', now,
    'leased', busy.held, 'leased_before', busy.before, 'leased_since', busy.since,
    'long_leased', slow.held, 'long_leased_before', slow.before, 'long_leased_since', slow.since,
    'quiet_leased', quiet.held, 'quiet_leased_before', quiet.before, 'quiet_leased_since', quiet.since,
    'lease_ms', counted_for[1], 'long_lease_ms', counted_for[2], 'quiet_lease_ms', counted_for[3])
  redis.call('PEXPIRE', key, math.ceil(capacity / tokens_per_ms) + 2 * math.max(counted_for[1], counted_for[2], counted_for[3]) + 1000)
end
return results
