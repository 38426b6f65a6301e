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

    // For each key: {1 if allowed else 0, tokens left (a string: Lua numbers become integers on the way out)}.
    // Each bucket is read and written once per call however often its key repeats; its requests are decided in
    // order against the state in between.
    private const string TokenBucketScript = """
        local capacity = tonumber(ARGV[1])
        local per_ms = tonumber(ARGV[2])
        local clock = redis.call('TIME')
        local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        local buckets = {}
        local results = {}
        for i, key in ipairs(KEYS) do
          local tokens = buckets[key]
          if tokens == nil then
            local state = redis.call('HMGET', key, 'tokens', 'at')
            tokens = tonumber(state[1])
            local at = tonumber(state[2])
            if tokens == nil then
              tokens = capacity
              at = now
            end
            tokens = math.min(capacity, tokens + math.max(0, now - at) * per_ms)
          end
          local allowed = 0
          if tokens >= 1 then
            tokens = tokens - 1
            allowed = 1
          end
          buckets[key] = tokens
          results[2 * i - 1] = allowed
          results[2 * i] = tostring(tokens)
        end
        for key, tokens in pairs(buckets) do
          redis.call('HSET', key, 'tokens', tostring(tokens), 'at', now)
          redis.call('PEXPIRE', key, math.ceil(capacity / per_ms) + 1000)
        end
        return results
        """;

    /// <summary>Decides one request for each of <paramref name="keys"/>, in their order.</summary>
    public async Task<RateDecision[]> DecideAsync(RateLimitRule rule, RedisKey[] keys)
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
                var result = (RedisResult[])(await database.ScriptEvaluateAsync(TokenBucketScript, keys,
                    [bucket.BurstLimit, (bucket.TokensPerSecond / 1000).ToString("R", CultureInfo.InvariantCulture)]))!;
                for (var index = 0; index < keys.Length; index++)
                {
                    decisions[index] = RateMath.TokenBucket(bucket, (long)result[2 * index] == 1,
                        double.Parse((string)result[2 * index + 1]!, CultureInfo.InvariantCulture));
                }

                return decisions;
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(rule), rule, "Unknown rate limit rule.");
        }
    }
}
