using Microsoft.Extensions.Options;
using Tracker.ApiService.Caching;

namespace Tracker.ApiService.Usage;

/// <summary>
/// The breakdown answers (endpoints, series, one key's days) through the tiered cache, kept fresh as
/// <see cref="UsageStatistics"/> keeps <c>daily</c> fresh: keys carry the current UTC hour or day and the client's
/// current generation (see <see cref="UsageGenerations"/>).
/// </summary>
public sealed class UsageBreakdowns(
    TieredCache cache, UsageGenerations generations, UsageBreakdownQueries queries, IOptions<UsageOptions> options, TimeProvider time)
{
    private readonly bool _cacheAnswers = options.Value.CacheAnswers;

    /// <summary>The caller's <paramref name="limit"/> busiest endpoints of the current UTC hour and the <paramref name="hours"/> - 1 before it.</summary>
    public async Task<IReadOnlyList<EndpointUsage>> EndpointsAsync(Guid clientId, int hours, int limit, CancellationToken cancellationToken)
    {
        var currentHour = CurrentHour();
        var firstHour = currentHour.AddHours(1 - hours);
        var table = await CachedAsync(clientId, "usage-endpoints", $"{hours}:{currentHour.Ticks / TimeSpan.TicksPerHour}",
            (Queries: queries, ClientId: clientId, From: firstHour, To: currentHour),
            static (state, token) => new ValueTask<EndpointTable>(state.Queries.EndpointsAsync(state.ClientId, state.From, state.To, token)),
            cancellationToken);
        return table.Endpoints.Length <= limit ? table.Endpoints : table.Endpoints[..limit];
    }

    /// <summary>The caller's series over <paramref name="window"/>.</summary>
    public async Task<UsageSeries> SeriesAsync(
        Guid clientId, SeriesWindow window, SeriesGrouping grouping, bool percentiles, int limit, CancellationToken cancellationToken) =>
        await CachedAsync(clientId, "usage-series",
            $"{window.Granularity}:{window.Start.UtcTicks}:{window.BucketCount}:{window.TimeZone.Id}:{grouping}:{percentiles}:{limit}",
            (Queries: queries, ClientId: clientId, Window: window, Grouping: grouping, Percentiles: percentiles, Limit: limit),
            static (state, token) => new ValueTask<UsageSeries>(
                state.Queries.SeriesAsync(state.ClientId, state.Window, state.Grouping, state.Percentiles, state.Limit, token)),
            cancellationToken);

    /// <summary>Key <paramref name="apiKeyId"/>'s counts for the last <paramref name="days"/> UTC days including today,
    /// oldest first; null when the caller has no such key.</summary>
    public async Task<IReadOnlyList<DailyCount>?> KeyDailyAsync(Guid clientId, Guid apiKeyId, int days, CancellationToken cancellationToken)
    {
        var today = DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime);
        var state = (Queries: queries, ClientId: clientId, ApiKeyId: apiKeyId, Today: today);
        static ValueTask<DailyCounts?> Query((UsageBreakdownQueries Queries, Guid ClientId, Guid ApiKeyId, DateOnly Today) state, CancellationToken token) =>
            new(state.Queries.KeyDailyAsync(state.ClientId, state.ApiKeyId, state.Today, token));
        // Anyone may ask for ids of keys that are not theirs: "no such key" stays in this instance's memory.
        var cached = _cacheAnswers
            ? await cache.GetOrCreateSharingOnlyFoundAsync("usage-key-daily",
                $"usage-key-daily:{clientId:N}:{apiKeyId:N}:{today.DayNumber}:{await generations.OfClientAsync(clientId, cancellationToken)}",
                state, Query, UsageStatistics.EntryOptions, TimeSpan.FromSeconds(10), cancellationToken)
            : await Query(state, cancellationToken);
        return cached?.Last(days);
    }

    private async ValueTask<T> CachedAsync<TState, T>(
        Guid clientId, string cacheName, string key, TState state, Func<TState, CancellationToken, ValueTask<T>> factory,
        CancellationToken cancellationToken)
        where T : class
    {
        if (!_cacheAnswers)
        {
            return await factory(state, cancellationToken);
        }

        var generation = await generations.OfClientAsync(clientId, cancellationToken);
        return await cache.GetOrCreateAsync(cacheName, $"{cacheName}:{clientId:N}:{key}:{generation}", state, factory,
            UsageStatistics.EntryOptions, cancellationToken);
    }

    private DateTime CurrentHour()
    {
        var now = time.GetUtcNow().UtcDateTime;
        return new DateTime(now.Year, now.Month, now.Day, now.Hour, 0, 0, DateTimeKind.Utc);
    }
}
