using Tracker.ApiService.Storage;

namespace Tracker.ApiService.RateLimiting;

/// <summary>What every partition's limiter shares: the two stores, Redis's state, telemetry and the current request.</summary>
internal sealed class RateLimitingServices(
    RedisRateStore store, LocalRateStore local, RedisAvailability redis, RateLimitingMetrics metrics,
    IHttpContextAccessor httpContexts, TimeProvider time)
{
    public RedisRateStore Store => store;

    public LocalRateStore Local => local;

    public RedisAvailability Redis => redis;

    public RateLimitingMetrics Metrics => metrics;

    public IHttpContextAccessor HttpContexts => httpContexts;

    public TimeProvider Time => time;

    /// <summary>How long a partition's state matters after its last request.</summary>
    public static TimeSpan StateLifetime(RateLimitRule rule) => rule switch
    {
        FixedWindowRule window => window.Window,
        TokenBucketRule bucket => TimeSpan.FromSeconds(bucket.BurstLimit / bucket.TokensPerSecond),
        _ => TimeSpan.Zero,
    };
}
