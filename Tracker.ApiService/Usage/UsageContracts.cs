namespace Tracker.ApiService.Usage;

/// <summary>Requests of the caller on one UTC calendar day.</summary>
public sealed record DailyCount(DateOnly Date, long Count);

/// <summary>One of the busiest clients of a window; the email is masked.</summary>
public sealed record TopClient(Guid ClientId, string ClientName, string ClientEmail, long TotalRequests);

/// <summary>
/// A count for each of the <see cref="UsageQueries.MaxDays"/> days ending on <see cref="LastDay"/>, oldest first, as
/// the daily queries read them; every <c>days</c> value is a slice of it.
/// </summary>
public sealed record DailyCounts(DateOnly LastDay, long[] Counts)
{
    /// <summary>The last <paramref name="days"/> days' counts, oldest first.</summary>
    public IReadOnlyList<DailyCount> Last(int days)
    {
        var answer = new DailyCount[days];
        var offset = Counts.Length - days;
        for (var index = 0; index < days; index++)
        {
            answer[index] = new DailyCount(LastDay.AddDays(index - days + 1), Counts[offset + index]);
        }

        return answer;
    }
}

/// <summary>One endpoint (method and normalised path) of the caller's busiest, over a window of whole UTC hours.</summary>
/// <param name="Endpoint">The path as the rollups keep it: id-like segments as <c>{id}</c>, no query; <c>{other}</c>
/// holds the endpoints past the per-hour cap.</param>
/// <param name="ClientErrors">Logs with a 4xx status code.</param>
/// <param name="ServerErrors">Logs with a 5xx status code.</param>
/// <param name="P50">Median duration in milliseconds (within 1%), over the logs that carried one; null if none did.</param>
public sealed record EndpointUsage(
    string Method, string Endpoint, long Count, long ClientErrors, long ServerErrors, double? P50, double? P95, double? P99);

/// <summary>A usage series: one line per group (a single <c>total</c> line without <c>groupBy</c>), zero-filled.</summary>
/// <param name="GroupBy">endpoint, status or key; null for the total.</param>
public sealed record UsageSeries(string Granularity, string TimeZone, string? GroupBy, IReadOnlyList<SeriesLine> Series);

/// <summary>One group's counts per bucket.</summary>
/// <param name="Group">The endpoint (<c>GET /users/{id}</c>), the status class (<c>2xx</c>, or <c>none</c> for logs
/// without a status code), the API key's id, or <c>total</c>.</param>
public sealed record SeriesLine(string Group, long Total, IReadOnlyList<SeriesPoint> Points);

/// <summary>One bucket of a series.</summary>
/// <param name="Start">When the bucket starts, with the time zone's offset at that moment.</param>
/// <param name="Hours">The bucket's length: 1 for hours; 24 for days, or 23 or 25 across a DST change.</param>
/// <param name="P50">With <c>percentiles=true</c>: the median duration in milliseconds (within 1%) of the bucket's
/// logs that carried one; null otherwise or if none did.</param>
public sealed record SeriesPoint(DateTimeOffset Start, int Hours, long Count, double? P50, double? P95, double? P99);
