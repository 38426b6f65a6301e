using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using Tracker.ApiService.Storage;

namespace Tracker.ApiService.Caching;

/// <summary>
/// HybridCache: an in-memory tier in each instance and Redis as the shared tier, on the same connection the
/// Aspire Redis integration manages (so it reconnects by itself and is traced). HybridCache itself makes a miss
/// stampede-safe: concurrent callers for one key share one factory call.
/// </summary>
public static class CachingExtensions
{
    /// <summary>
    /// Prefix of every Tracker cache key in Redis, so the cache can share a Redis with other data; the setting
    /// <see cref="RedisInstanceNameSetting"/> replaces it (tests give each API host one of its own).
    /// </summary>
    public const string DefaultRedisInstanceName = "tracker:";

    /// <summary>The setting that replaces <see cref="DefaultRedisInstanceName"/>.</summary>
    public const string RedisInstanceNameSetting = "Caching:RedisInstanceName";

    public static IHostApplicationBuilder AddTrackerCaching(this IHostApplicationBuilder builder)
    {
        // The Aspire integration for IDistributedCache on Redis is not available here; this registers the
        // same RedisCache on the integration's IConnectionMultiplexer instead of a second connection.
        var instanceName = builder.Configuration[RedisInstanceNameSetting] is { Length: > 0 } configured ? configured : DefaultRedisInstanceName;
        builder.Services.AddStackExchangeRedisCache(_ => { });
        builder.Services.AddOptions<RedisCacheOptions>()
            .Configure<IServiceProvider>((options, services) =>
            {
                options.InstanceName = instanceName;
                options.ConnectionMultiplexerFactory = () => Task.FromResult(services.GetRequiredService<IConnectionMultiplexer>());
            });

        // HybridCache's Redis tier, wrapped so that commands caught by the start of an outage are misses, not
        // errors logged per request.
        builder.Services.AddSingleton<IDistributedCache>(services => new OutageTolerantDistributedCache(
            ActivatorUtilities.CreateInstance<RedisCache>(services), services.GetRequiredService<RedisAvailability>()));

        // The memory tier is bounded by bytes, not only by time: without a limit an instance holds whatever was read
        // within the entries' memory lifetimes (10 s for an analytics answer), however many clients read. HybridCache
        // gives each entry its payload's size, so the limit counts cached bytes (not each entry's few hundred bytes of
        // bookkeeping). While the tier is full a new entry is not kept in memory and a compaction in the background
        // drops the least recently used; what is not in memory is read from Redis (or, for what lives in memory only,
        // such as generations, "not found" answers and everything while Redis is down, read again from its source).
        builder.Services.AddOptions<CachingOptions>().BindConfiguration(CachingOptions.SectionName)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<MemoryCacheOptions>().Configure<IOptions<CachingOptions>>(
            (memory, caching) => memory.SizeLimit = caching.Value.LocalCacheMegabytes * 1024L * 1024);
        builder.Services.AddHybridCache(options =>
        {
            options.MaximumPayloadBytes = 1024 * 1024;
            options.DefaultEntryOptions = new HybridCacheEntryOptions
            {
                Expiration = TimeSpan.FromMinutes(5),
                LocalCacheExpiration = TimeSpan.FromSeconds(30),
            };
        });
        builder.Services.AddSingleton<CacheMetrics>();
        builder.Services.AddSingleton<TieredCache>();
        return builder;
    }
}

/// <summary>The caches' settings (<c>Caching</c> section).</summary>
public sealed class CachingOptions
{
    public const string SectionName = "Caching";

    /// <summary>
    /// The most the in-memory tier of each instance holds, in MiB of cached payloads. The default holds the cached
    /// `series` answers (about 37 kB each) of the benchmark's 1,000 busiest clients with room to spare.
    /// </summary>
    [Range(1, 4096)]
    public int LocalCacheMegabytes { get; set; } = 64;
}
