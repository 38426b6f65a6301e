using System.Globalization;
using StackExchange.Redis;

namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// Rate decisions in Redis, shared by every instance. One call decides a batch of requests of one policy — one
/// request per key, in order, a key repeated as often as it has requests — in a single Lua script: atomic (a
/// burst of concurrent requests cannot slip between a read and a write) and one round trip however many
/// requests it decides. Time comes from Redis (<c>TIME</c>), never from the instances, so their clock
/// differences do not matter. (All keys of a call must live on one node; this targets a single Redis server.)
/// </summary>
/// <remarks>
/// RedisRateLimiting was considered: it is atomic too, but it decides one request per round trip, passes each
/// instance's own clock into its scripts and has no answer when Redis is unreachable (the exception reaches the
/// caller), so a wrapper with a local fallback and header values would be needed around it anyway; these two
/// short scripts are simpler than that.
/// </remarks>
public sealed class RedisRateStore(IConnectionMultiplexer redis)
{
    // For each key: {count in its window after this request, milliseconds until the window ends}. The first
    // request of a window sets its expiry. A key repeated n times (one partition's queued requests) costs one INCRBY
    // of n, its requests counting up from where the key stood, as n INCRs in a row would.
    private const string FixedWindowScript = """
        local window = tonumber(ARGV[1])
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
            redis.call('PEXPIRE', key, window)
            ttl = window
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
        """;

    // For each key: {tokens granted, tokens left (a string: Lua numbers become integers on the way out)}. A request
    // asks for ARGV[3 + i] tokens, its own and those its instance will hold for the key's next requests
    // (TokenLease), or for -ARGV[3 + i] to hold when its instance refills ahead of requests; it gets at least one while one is left, and never more than half of what is left, so several
    // instances sharing a nearly empty bucket take ever smaller shares down to one token each. Zero is a refusal.
    // It first hands back ARGV[3 + #KEYS + i] tokens its instance held but no longer may spend.
    // Tokens granted to be held still count against the burst while an instance may hold them (ARGV[3] ms from the
    // grant; the instance drops them sooner): the bucket refills only up to the burst minus the tokens granted in
    // the current and the previous lease-long window, so held tokens never add to a bucket that refilled meanwhile.
    // Each bucket is read and written once per call however often its key repeats; its requests are decided in
    // order against the state in between.
    private const string TokenBucketScript = """
        local capacity = tonumber(ARGV[1])
        local per_ms = tonumber(ARGV[2])
        local lease_ms = tonumber(ARGV[3])
        local clock = redis.call('TIME')
        local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        local buckets = {}
        local results = {}
        for i, key in ipairs(KEYS) do
          local bucket = buckets[key]
          if bucket == nil then
            local state = redis.call('HMGET', key, 'tokens', 'at', 'leased', 'leased_before', 'leased_since')
            local tokens = tonumber(state[1])
            local at = tonumber(state[2])
            if tokens == nil then
              tokens = capacity
              at = now
            end
            bucket = { leased = tonumber(state[3]) or 0, before = tonumber(state[4]) or 0, since = tonumber(state[5]) or now }
            if now >= bucket.since + 2 * lease_ms then
              bucket.leased, bucket.before, bucket.since = 0, 0, now
            elseif now >= bucket.since + lease_ms then
              bucket.leased, bucket.before, bucket.since = 0, bucket.leased, bucket.since + lease_ms
            end
            local ceiling = math.max(tokens, capacity - bucket.leased - bucket.before)
            bucket.tokens = math.min(ceiling, tokens + math.max(0, now - at) * per_ms)
            buckets[key] = bucket
          end
          local returned = tonumber(ARGV[3 + #KEYS + i])
          if returned > 0 then
            -- Still counted as held until their window ages out, which can only leave the bucket lower than exact.
            bucket.tokens = math.max(bucket.tokens, math.min(bucket.tokens + returned, capacity - bucket.leased - bucket.before))
          end
          -- A negative count is a refill: every token granted is held, none spent by a request now.
          local want = tonumber(ARGV[3 + i])
          local spent_now = want > 0 and 1 or 0
          want = math.abs(want)
          local granted = 0
          if bucket.tokens >= 1 then
            granted = math.max(1, math.min(want, math.floor(bucket.tokens / 2)))
            bucket.tokens = bucket.tokens - granted
            bucket.leased = bucket.leased + granted - spent_now
          end
          results[2 * i - 1] = granted
          results[2 * i] = tostring(bucket.tokens)
        end
        for key, bucket in pairs(buckets) do
          redis.call('HSET', key, 'tokens', tostring(bucket.tokens), 'at', now,
            'leased', bucket.leased, 'leased_before', bucket.before, 'leased_since', bucket.since)
          redis.call('PEXPIRE', key, math.ceil(capacity / per_ms) + lease_ms + 1000)
        end
        return results
        """;

    /// <summary>
    /// Decides one request for each of <paramref name="keys"/>, in their order. For a token bucket, a request may
    /// ask for more tokens than its own and hand back unspent ones (<paramref name="fetches"/>, aligned with the
    /// keys; one token each and none back when null): what it gets beyond its own is <see cref="RateDecision.LeasedTokens"/>.
    /// </summary>
    public async Task<RateDecision[]> DecideAsync(RateLimitRule rule, RedisKey[] keys, LeaseFetch[]? fetches = null)
    {
        var database = redis.GetDatabase();
        var decisions = new RateDecision[keys.Length];
        switch (rule)
        {
            case FixedWindowRule window:
            {
                var result = (RedisResult[])(await database.ScriptEvaluateAsync(FixedWindowScript, keys, [(long)window.Window.TotalMilliseconds]))!;
                for (var index = 0; index < keys.Length; index++)
                {
                    decisions[index] = RateMath.FixedWindow(window, (long)result[2 * index], TimeSpan.FromMilliseconds((long)result[2 * index + 1]));
                }

                return decisions;
            }

            case TokenBucketRule bucket:
            {
                var arguments = new RedisValue[3 + 2 * keys.Length];
                arguments[0] = bucket.BurstLimit;
                arguments[1] = (bucket.TokensPerSecond / 1000).ToString("R", CultureInfo.InvariantCulture);
                arguments[2] = (long)Math.Ceiling(bucket.LeaseLifetime.TotalMilliseconds);
                for (var index = 0; index < keys.Length; index++)
                {
                    var fetch = fetches?[index] ?? LeaseFetch.None;
                    arguments[3 + index] = fetch.IsRefill ? -fetch.Tokens : Math.Max(1, fetch.Tokens);
                    arguments[3 + keys.Length + index] = fetch.Returned;
                }

                var result = (RedisResult[])(await database.ScriptEvaluateAsync(TokenBucketScript, keys, arguments))!;
                for (var index = 0; index < keys.Length; index++)
                {
                    var granted = (int)(long)result[2 * index];
                    decisions[index] = RateMath.TokenBucket(bucket, granted > 0,
                        double.Parse((string)result[2 * index + 1]!, CultureInfo.InvariantCulture)) with { LeasedTokens = Math.Max(0, granted - 1) };
                }

                return decisions;
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(rule), rule, "Unknown rate limit rule.");
        }
    }
}
