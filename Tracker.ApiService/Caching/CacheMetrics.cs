using System.Diagnostics.Metrics;

namespace Tracker.ApiService.Caching;

/// <summary>Cache telemetry (meter "Tracker.Caching"), shown in the Aspire dashboard.</summary>
public sealed class CacheMetrics
{
    public const string Name = "Tracker.Caching";

    private readonly Counter<long> _lookups;

    public CacheMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(Name);
        _lookups = meter.CreateCounter<long>("tracker.cache.lookups", "{lookup}",
            "Cache lookups by cache and by the tier that answered: memory and redis are hits of that tier, database is a miss of both.");
    }

    /// <summary>Counts one lookup of <paramref name="cache"/> answered by <paramref name="tier"/>.</summary>
    public void Answered(string cache, CacheTier tier) =>
        _lookups.Add(1, new KeyValuePair<string, object?>("cache", cache), new KeyValuePair<string, object?>("tier", tier.Name));
}

/// <summary>Where a cached value came from.</summary>
public sealed record CacheTier(string Name)
{
    public static readonly CacheTier Memory = new("memory");
    public static readonly CacheTier Redis = new("redis");
    public static readonly CacheTier Database = new("database");
}
