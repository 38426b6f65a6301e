using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Options;
using Tracker.ApiService.Caching;

namespace Tracker.ApiService.Usage;

/// <summary>
/// The analytics answers, through the tiered cache. Keys carry the current UTC day or hour (so windows move on
/// by themselves) and the current generation (so a commit makes them obsolete on every instance within the
/// freshness bound); see <see cref="UsageGenerations"/>.
/// </summary>
public sealed class UsageStatistics(
    TieredCache cache, UsageGenerations generations, UsageQueries queries, IOptions<UsageOptions> options, TimeProvider time)
{
    private readonly bool _cacheAnswers = options.Value.CacheAnswers;

    // Entries are never invalidated, only superseded by a newer generation. Redis keeps them a minute: that bounds
    // staleness if an instance dies before publishing its last changes. Memory keeps them ten seconds, because
    // under steady ingest each busy client leaves a trail of superseded entries.
    internal static readonly HybridCacheEntryOptions EntryOptions = new()
    {
        Expiration = TimeSpan.FromMinutes(1),
        LocalCacheExpiration = TimeSpan.FromSeconds(10),
    };

    /// <summary>The caller's counts for the last <paramref name="days"/> UTC days including today, oldest first.</summary>
    public async Task<IReadOnlyList<DailyCount>> DailyAsync(Guid clientId, int days, CancellationToken cancellationToken)
    {
        var today = DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime);
        var cached = _cacheAnswers
            ? await cache.GetOrCreateAsync("usage-daily",
                $"usage-daily:{clientId:N}:{today.DayNumber}:{await generations.OfClientAsync(clientId, cancellationToken)}",
                (Queries: queries, ClientId: clientId, Today: today),
                static (state, token) => new ValueTask<DailyCounts>(state.Queries.DailyAsync(state.ClientId, state.Today, token)),
                EntryOptions, cancellationToken)
            : await queries.DailyAsync(clientId, today, cancellationToken);

        return cached.Last(days);
    }

    /// <summary>The <paramref name="limit"/> busiest clients of the current UTC hour and the <paramref name="hours"/> - 1 before it.</summary>
    public async Task<IReadOnlyList<TopClient>> TopAsync(int hours, int limit, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var currentHour = new DateTime(now.Year, now.Month, now.Day, now.Hour, 0, 0, DateTimeKind.Utc);
        var firstHour = currentHour.AddHours(1 - hours);
        var cached = _cacheAnswers
            ? await cache.GetOrCreateAsync("usage-top",
                $"usage-top:{hours}:{currentHour.Ticks / TimeSpan.TicksPerHour}:{await generations.OfAllAsync(cancellationToken)}",
                (Queries: queries, From: firstHour, To: currentHour),
                static (state, token) => new ValueTask<TopClients>(state.Queries.TopAsync(state.From, state.To, token)),
                EntryOptions, cancellationToken)
            : await queries.TopAsync(firstHour, currentHour, cancellationToken);
        return cached.Clients.Length <= limit ? cached.Clients : cached.Clients[..limit];
    }
}
