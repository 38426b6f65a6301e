using System.Diagnostics;
using Npgsql;
using Tracker.Data;

namespace Tracker.ApiService.Usage;

/// <summary>
/// The breakdown queries: one client's cells of the detailed hourly rollups (<c>usage_hourly_details</c>) over a
/// window, read through its primary key's prefix (client, hour) and summed here, latency sketches merged; never the
/// logs, so the cost depends on the window and the client's cells, not on how many logs exist.
/// </summary>
public sealed class UsageBreakdownQueries(NpgsqlDataSource dataSource, UsageMetrics metrics)
{
    /// <summary>Groups a series shows, at most.</summary>
    public const int MaxSeriesGroups = 50;

    private static readonly double[] Quantiles = [0.5, 0.95, 0.99];

    private const string EndpointsSql = """
        SELECT method, endpoint, status_class, request_count, latency
        FROM usage_hourly_details
        WHERE client_id = $1 AND hour_start >= $2 AND hour_start <= $3
        """;

    private const string KeyDailySql = """
        SELECT (hour_start AT TIME ZONE 'UTC')::date AS day, sum(request_count)::bigint
        FROM usage_hourly_details
        WHERE client_id = $1 AND api_key_id = $2 AND hour_start >= $3 AND hour_start < $4
        GROUP BY day
        """;

    /// <summary>The <see cref="UsageQueries.MaxLimit"/> busiest endpoints of the client over the whole UTC hours from
    /// <paramref name="firstHour"/> to <paramref name="lastHour"/>: most requests first, then by method and endpoint.</summary>
    public async Task<EndpointTable> EndpointsAsync(Guid clientId, DateTime firstHour, DateTime lastHour, CancellationToken cancellationToken)
    {
        var groups = new Dictionary<(string Method, string Endpoint), EndpointTotals>();
        var started = Stopwatch.GetTimestamp();
        await using (var command = dataSource.CreateCommand(EndpointsSql))
        {
            command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = clientId });
            command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = firstHour });
            command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = lastHour });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var key = (reader.GetString(0), reader.GetString(1));
                if (!groups.TryGetValue(key, out var totals))
                {
                    totals = new EndpointTotals();
                    groups.Add(key, totals);
                }

                var statusClass = reader.GetInt16(2);
                var count = reader.GetInt64(3);
                totals.Count += count;
                totals.ClientErrors += statusClass == 4 ? count : 0;
                totals.ServerErrors += statusClass == 5 ? count : 0;
                totals.Latency.Merge(reader.GetFieldValue<long[]>(4));
            }
        }

        metrics.Queried("endpoints", Stopwatch.GetElapsedTime(started));
        return new EndpointTable([.. groups
            .OrderByDescending(group => group.Value.Count)
            .ThenBy(group => group.Key.Method, StringComparer.Ordinal)
            .ThenBy(group => group.Key.Endpoint, StringComparer.Ordinal)
            .Take(UsageQueries.MaxLimit)
            .Select(group => new EndpointUsage(group.Key.Method, group.Key.Endpoint, group.Value.Count, group.Value.ClientErrors,
                group.Value.ServerErrors, group.Value.Latency.Quantile(Quantiles[0]), group.Value.Latency.Quantile(Quantiles[1]),
                group.Value.Latency.Quantile(Quantiles[2])))]);
    }

    /// <summary>The client's series over <paramref name="window"/>, its <paramref name="limit"/> busiest groups.</summary>
    public async Task<UsageSeries> SeriesAsync(
        Guid clientId, SeriesWindow window, SeriesGrouping grouping, bool percentiles, int limit, CancellationToken cancellationToken)
    {
        var buckets = window.BucketCount;
        var lines = new Dictionary<string, (long[] Counts, LatencySketch?[]? Latency)>(StringComparer.Ordinal);
        var started = Stopwatch.GetTimestamp();
        await using (var command = dataSource.CreateCommand($"""
            SELECT hour_start, {GroupColumn(grouping)}, request_count, {(percentiles ? "latency" : "NULL::bigint[]")}
            FROM usage_hourly_details
            WHERE client_id = $1 AND hour_start >= $2 AND hour_start < $3
            """))
        {
            command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = clientId });
            command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = window.Start.UtcDateTime });
            command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = window.End.UtcDateTime });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var bucket = window.BucketOf(reader.GetFieldValue<DateTimeOffset>(0));
                var group = GroupName(grouping, reader, 1);
                if (!lines.TryGetValue(group, out var line))
                {
                    line = (new long[buckets], percentiles ? new LatencySketch?[buckets] : null);
                    lines.Add(group, line);
                }

                line.Counts[bucket] += reader.GetInt64(2);
                if (line.Latency is { } latency)
                {
                    (latency[bucket] ??= new LatencySketch()).Merge(reader.GetFieldValue<long[]>(3));
                }
            }
        }

        metrics.Queried("series", Stopwatch.GetElapsedTime(started));
        if (grouping == SeriesGrouping.None && lines.Count == 0)
        {
            lines.Add("total", (new long[buckets], null));
        }

        var series = lines
            .Select(line => (Group: line.Key, Total: line.Value.Counts.Sum(), line.Value.Counts, line.Value.Latency))
            .OrderByDescending(line => line.Total)
            .ThenBy(line => line.Group, StringComparer.Ordinal)
            .Take(limit)
            .Select(line => new SeriesLine(line.Group, line.Total, [.. Enumerable.Range(0, buckets).Select(bucket =>
            {
                var latency = line.Latency?[bucket];
                return new SeriesPoint(window.LocalStart(bucket),
                    (int)((window.Boundaries[bucket + 1] - window.Boundaries[bucket]).Ticks / TimeSpan.TicksPerHour), line.Counts[bucket],
                    latency?.Quantile(Quantiles[0]), latency?.Quantile(Quantiles[1]), latency?.Quantile(Quantiles[2]));
            })]))
            .ToList();
        return new UsageSeries(window.Granularity.ToString().ToLowerInvariant(), window.TimeZone.Id,
            grouping == SeriesGrouping.None ? null : grouping.ToString().ToLowerInvariant(), series);
    }

    /// <summary>The key's count for each of the <see cref="UsageQueries.MaxDays"/> UTC days ending on
    /// <paramref name="lastDay"/>; null when the client has no key <paramref name="apiKeyId"/>.</summary>
    public async Task<DailyCounts?> KeyDailyAsync(Guid clientId, Guid apiKeyId, DateOnly lastDay, CancellationToken cancellationToken)
    {
        var firstDay = lastDay.AddDays(1 - UsageQueries.MaxDays);
        var counts = new long[UsageQueries.MaxDays];
        var started = Stopwatch.GetTimestamp();
        await using var statements = dataSource.CreateBatch();
        var owned = new NpgsqlBatchCommand("SELECT EXISTS (SELECT FROM api_keys WHERE id = $1 AND client_id = $2)");
        owned.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = apiKeyId });
        owned.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = clientId });
        var daily = new NpgsqlBatchCommand(KeyDailySql);
        daily.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = clientId });
        daily.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = apiKeyId });
        daily.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = firstDay.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc) });
        daily.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = lastDay.AddDays(1).ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc) });
        statements.BatchCommands.Add(owned);
        statements.BatchCommands.Add(daily);
        await using var reader = await statements.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        if (!reader.GetBoolean(0))
        {
            return null;
        }

        await reader.NextResultAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            counts[reader.GetFieldValue<DateOnly>(0).DayNumber - firstDay.DayNumber] = reader.GetInt64(1);
        }

        metrics.Queried("key_daily", Stopwatch.GetElapsedTime(started));
        return new DailyCounts(lastDay, counts);
    }

    private sealed class EndpointTotals
    {
        public long Count;
        public long ClientErrors;
        public long ServerErrors;
        public readonly LatencySketch Latency = new();
    }

    private static string GroupColumn(SeriesGrouping grouping) => grouping switch
    {
        SeriesGrouping.Endpoint => "method || ' ' || endpoint",
        SeriesGrouping.Status => "status_class",
        SeriesGrouping.Key => "api_key_id",
        _ => "NULL",
    };

    private static string GroupName(SeriesGrouping grouping, NpgsqlDataReader reader, int column) => grouping switch
    {
        SeriesGrouping.Endpoint => reader.GetString(column),
        SeriesGrouping.Status => reader.GetInt16(column) is var statusClass and > 0 ? (char)('0' + statusClass) + "xx" : "none",
        SeriesGrouping.Key => reader.GetGuid(column).ToString(),
        _ => "total",
    };
}
