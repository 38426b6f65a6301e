using Microsoft.Extensions.Caching.Hybrid;
using Tracker.ApiService.Storage;

namespace Tracker.ApiService.Caching;

/// <summary>
/// HybridCache as every capability uses it: memory tier, then Redis, then the factory, with one factory call
/// per key however many callers miss at once (HybridCache's own stampede protection). Two things are added,
/// because HybridCache does neither: it skips the Redis tier while Redis is known to be down (instead of a
/// failed command, and a logged error, per lookup), and it counts which tier answered each lookup.
/// </summary>
public sealed class TieredCache(HybridCache cache, RedisAvailability redis, CacheMetrics metrics)
{
    // Reads the memory tier only: no Redis, no factory, nothing written. A miss returns null.
    private static readonly HybridCacheEntryOptions MemoryOnlyProbe = new()
    {
        Flags = HybridCacheEntryFlags.DisableDistributedCache | HybridCacheEntryFlags.DisableUnderlyingData
            | HybridCacheEntryFlags.DisableLocalCacheWrite,
    };

    /// <summary>
    /// Gets the value for <paramref name="key"/> from the first tier that has it, or from
    /// <paramref name="factory"/>, which then fills the tiers. <paramref name="cacheName"/> tags the metrics.
    /// </summary>
    public async ValueTask<T> GetOrCreateAsync<TState, T>(
        string cacheName, string key, TState state, Func<TState, CancellationToken, ValueTask<T>> factory,
        HybridCacheEntryOptions options, CancellationToken cancellationToken)
        where T : class?
    {
        // The probe is a second dictionary lookup on a hit; it is what tells a memory hit from a Redis hit.
        var inMemory = await cache.GetOrCreateAsync<T?>(key, static _ => ValueTask.FromResult<T?>(null), MemoryOnlyProbe, cancellationToken: cancellationToken);
        if (inMemory is not null)
        {
            metrics.Answered(cacheName, CacheTier.Memory);
            return inMemory;
        }

        var load = new Load<TState, T>(state, factory);
        var value = await cache.GetOrCreateAsync(key, load, static (load, token) => load.RunAsync(token), WithAvailableTiers(options), cancellationToken: cancellationToken);
        // A cached null (a negative answer) is indistinguishable from a probe miss; it is counted as a memory hit.
        metrics.Answered(cacheName, load.Ran ? CacheTier.Database : value is null ? CacheTier.Memory : CacheTier.Redis);
        return value;
    }

    /// <summary>
    /// As <see cref="GetOrCreateAsync{TState, T}"/>, but an answer of <paramref name="factory"/> is stored by what
    /// it is: a value with <paramref name="options"/>, in both tiers; null ("there is none") only in this
    /// instance's memory, for <paramref name="absentLifetime"/>. Anyone can ask for keys that do not exist, as many
    /// as they like, and they must not fill the shared tier.
    /// </summary>
    public async ValueTask<T?> GetOrCreateSharingOnlyFoundAsync<TState, T>(
        string cacheName, string key, TState state, Func<TState, CancellationToken, ValueTask<T?>> factory,
        HybridCacheEntryOptions options, TimeSpan absentLifetime, CancellationToken cancellationToken)
        where T : class
    {
        var load = new Load<TState, T?>(state, factory);
        // HybridCache writes a factory's answer to Redis before returning it, whatever it is; so this lookup writes
        // only memory (a Redis hit must become a memory hit, as ever), and the answer is stored below by its kind.
        var value = await GetOrCreateAsync(cacheName, key, load, static (load, token) => load.RunAsync(token),
            WithFlags(options, HybridCacheEntryFlags.DisableDistributedCacheWrite), cancellationToken);
        if (load.Ran)
        {
            await SetAsync(key, value, value is null ? AbsentEntry(absentLifetime) : options, cancellationToken);
        }

        return value;
    }

    /// <summary>
    /// The value for <paramref name="key"/> if memory or Redis holds it, else null: never the database, and nothing
    /// is written to Redis. For callers that must not cost the database anything (a caller being turned away).
    /// </summary>
    public async ValueTask<T?> GetCachedAsync<T>(string cacheName, string key, HybridCacheEntryOptions options, CancellationToken cancellationToken)
        where T : class
    {
        var value = await cache.GetOrCreateAsync<T?>(key, static _ => ValueTask.FromResult<T?>(null),
            WithFlags(WithAvailableTiers(options), HybridCacheEntryFlags.DisableUnderlyingData | HybridCacheEntryFlags.DisableDistributedCacheWrite),
            cancellationToken: cancellationToken);
        if (value is not null)
        {
            metrics.Answered(cacheName, CacheTier.Redis);
        }

        return value;
    }

    /// <summary>Stores <paramref name="value"/> in the tiers available now, replacing what they hold.</summary>
    public ValueTask SetAsync<T>(string key, T value, HybridCacheEntryOptions options, CancellationToken cancellationToken) =>
        cache.SetAsync(key, value, WithAvailableTiers(options), cancellationToken: cancellationToken);

    /// <summary>Removes <paramref name="key"/> from this instance's memory and, when it is reachable, from Redis.</summary>
    public async ValueTask RemoveAsync(string key, CancellationToken cancellationToken)
    {
        try
        {
            await cache.RemoveAsync(key, cancellationToken);
        }
        catch (Exception exception) when (redis.FellBack(nameof(TieredCache), exception))
        {
            // Counted, and still thrown: the caller must know the removal did not reach Redis.
            throw;
        }
    }

    private HybridCacheEntryOptions WithAvailableTiers(HybridCacheEntryOptions options) =>
        redis.IsAvailable ? options : WithFlags(options, HybridCacheEntryFlags.DisableDistributedCache);

    private static HybridCacheEntryOptions WithFlags(HybridCacheEntryOptions options, HybridCacheEntryFlags flags) => new()
    {
        Expiration = options.Expiration,
        LocalCacheExpiration = options.LocalCacheExpiration,
        Flags = (options.Flags ?? HybridCacheEntryFlags.None) | flags,
    };

    private static HybridCacheEntryOptions AbsentEntry(TimeSpan lifetime) => new()
    {
        Expiration = lifetime,
        LocalCacheExpiration = lifetime,
        Flags = HybridCacheEntryFlags.DisableDistributedCache,
    };

    private sealed class Load<TState, T>(TState state, Func<TState, CancellationToken, ValueTask<T>> factory)
    {
        public bool Ran { get; private set; }

        public ValueTask<T> RunAsync(CancellationToken cancellationToken)
        {
            Ran = true;
            return factory(state, cancellationToken);
        }
    }
}
