using System.Globalization;
using StackExchange.Redis;

namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// Rate decisions in Redis, shared by every instance: each call is a single Lua script, so it is atomic (a burst of
/// concurrent requests cannot slip between a read and a write) and costs one round trip. One call decides
/// <c>count</c> requests of one partition at once, in order: the limiter coalesces requests that arrive while a
/// call is in flight. Time comes from Redis (<c>TIME</c>), never from the instances, so their clock differences
/// do not matter.
/// </summary>
/// <remarks>
/// RedisRateLimiting was considered: it is atomic too, but it passes each instance's own clock into its scripts
/// and has no answer when Redis is unreachable (the exception reaches the caller), so a wrapper with a local
/// fallback and header values would be needed around it anyway; these two short scripts are that much simpler.
/// </remarks>
public sealed class RedisRateStore(IConnectionMultiplexer redis)
{
    // Returns {count in the window after these requests, milliseconds until the window ends}. The first request
    // of a window sets its expiry.
    private static readonly LuaScript FixedWindowScript = LuaScript.Prepare("""
        local count = redis.call('INCRBY', @key, @count)
        local ttl = redis.call('PTTL', @key)
        if ttl < 0 then
          redis.call('PEXPIRE', @key, @window)
          ttl = tonumber(@window)
        end
        return {count, ttl}
        """);

    // Returns {requests granted (the first ones), tokens left (as a string: Lua numbers become integers on the way out)}.
    private static readonly LuaScript TokenBucketScript = LuaScript.Prepare("""
        local capacity = tonumber(@capacity)
        local per_ms = tonumber(@per_ms)
        local clock = redis.call('TIME')
        local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        local state = redis.call('HMGET', @key, 'tokens', 'at')
        local tokens = tonumber(state[1])
        local at = tonumber(state[2])
        if tokens == nil then
          tokens = capacity
          at = now
        end
        tokens = math.min(capacity, tokens + math.max(0, now - at) * per_ms)
        local granted = math.min(tonumber(@count), math.floor(tokens))
        tokens = tokens - granted
        redis.call('HSET', @key, 'tokens', tostring(tokens), 'at', now)
        redis.call('PEXPIRE', @key, math.ceil(capacity / per_ms) + 1000)
        return {granted, tostring(tokens)}
        """);

    /// <summary>Decides <paramref name="count"/> requests of the partition <paramref name="key"/>, in their order.</summary>
    public async Task<RateDecision[]> DecideAsync(RateLimitRule rule, string key, int count)
    {
        var database = redis.GetDatabase();
        var decisions = new RateDecision[count];
        switch (rule)
        {
            case FixedWindowRule window:
            {
                var result = (RedisResult[])(await database.ScriptEvaluateAsync(FixedWindowScript,
                    new { key = (RedisKey)key, count, window = (long)window.Window.TotalMilliseconds }))!;
                var before = (long)result[0] - count;
                var windowLeft = TimeSpan.FromMilliseconds((long)result[1]);
                for (var index = 0; index < count; index++)
                {
                    decisions[index] = RateMath.FixedWindow(window, before + index + 1, windowLeft);
                }

                return decisions;
            }

            case TokenBucketRule bucket:
            {
                var result = (RedisResult[])(await database.ScriptEvaluateAsync(TokenBucketScript,
                    new { key = (RedisKey)key, count, capacity = bucket.BurstLimit, per_ms = bucket.TokensPerSecond / 1000 }))!;
                var granted = (long)result[0];
                var tokensLeft = double.Parse((string)result[1]!, CultureInfo.InvariantCulture);
                for (var index = 0; index < count; index++)
                {
                    decisions[index] = index < granted
                        ? RateMath.TokenBucket(bucket, allowed: true, tokensLeft + granted - index - 1)
                        : RateMath.TokenBucket(bucket, allowed: false, tokensLeft);
                }

                return decisions;
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(rule), rule, "Unknown rate limit rule.");
        }
    }
}
