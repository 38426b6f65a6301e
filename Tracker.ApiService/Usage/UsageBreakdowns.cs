using Tracker.ApiService.Http;

namespace Tracker.ApiService.Usage;

/// <summary>The breakdown answers (endpoints, series, one key's days), cached and fresh as <c>daily</c> is (see <see cref="UsageAnswerCache"/>).</summary>
public sealed class UsageBreakdowns(UsageAnswerCache answers, UsageBreakdownQueries queries, TimeProvider time)
{
    /// <summary>The caller's <paramref name="limit"/> busiest endpoints of the current UTC hour and the <paramref name="hours"/> - 1 before it.</summary>
    public async ValueTask<SerializedOk<Envelope<IReadOnlyList<EndpointUsage>>>> EndpointsAsync(
        Guid clientId, int hours, int limit, CancellationToken cancellationToken)
    {
        var currentHour = UsageClock.CurrentHour(time);
        return await answers.OfClientAsync("usage-endpoints", clientId, $"{hours}:{currentHour.Ticks / TimeSpan.TicksPerHour}:{limit}",
            (Queries: queries, ClientId: clientId, From: currentHour.AddHours(1 - hours), To: currentHour, Limit: limit),
            static async (state, token) => Envelope.Of("Endpoint usage retrieved successfully",
                await state.Queries.EndpointsAsync(state.ClientId, state.From, state.To, state.Limit, token)),
            cancellationToken);
    }

    /// <summary>The caller's series over <paramref name="window"/>.</summary>
    public async ValueTask<SerializedOk<Envelope<UsageSeries>>> SeriesAsync(
        Guid clientId, SeriesWindow window, SeriesGrouping grouping, bool percentiles, int limit, CancellationToken cancellationToken) =>
        await answers.OfClientAsync("usage-series", clientId,
            $"{window.Granularity}:{window.Start.UtcTicks}:{window.BucketCount}:{window.TimeZone.Id}:{grouping}:{percentiles}:{limit}",
            (Queries: queries, ClientId: clientId, Window: window, Grouping: grouping, Percentiles: percentiles, Limit: limit),
            static async (state, token) => Envelope.Of("Usage series retrieved successfully",
                await state.Queries.SeriesAsync(state.ClientId, state.Window, state.Grouping, state.Percentiles, state.Limit, token)),
            cancellationToken);

    /// <summary>Key <paramref name="apiKeyId"/>'s counts for the last <paramref name="days"/> UTC days including today,
    /// oldest first; null when the caller has no such key.</summary>
    public async ValueTask<SerializedOk<Envelope<IReadOnlyList<DailyCount>>>?> KeyDailyAsync(
        Guid clientId, Guid apiKeyId, int days, CancellationToken cancellationToken)
    {
        var today = UsageClock.Today(time);
        return await answers.OfClientIfFoundAsync("usage-key-daily", clientId, $"{apiKeyId:N}:{today.DayNumber}:{days}",
            (Queries: queries, ClientId: clientId, ApiKeyId: apiKeyId, Today: today, Days: days),
            static async (state, token) => await state.Queries.KeyDailyAsync(state.ClientId, state.ApiKeyId, state.Today, token) is { } counts
                ? Envelope.Of("API key usage retrieved successfully", counts.Last(state.Days))
                : null,
            cancellationToken);
    }
}
