using System.Collections.Frozen;
using System.Diagnostics;
using Npgsql;
using Tracker.Data;

namespace Tracker.ApiService.Usage;

/// <summary>
/// The breakdown queries: one client's cells of the detailed rollups over a window (<see cref="RollupCells"/>: whole
/// folded days from <c>usage_daily_details</c>, the rest from <c>usage_hourly_details</c>), never the logs.
/// PostgreSQL groups the cells and cuts
/// the busiest groups, and merges latency sketches only for the groups it returns, so however many cells a client has
/// (backdated logs, rotated keys), what comes back is at most the answer's own rows.
/// </summary>
public sealed class UsageBreakdownQueries(NpgsqlDataSource dataSource, UsageMetrics metrics)
{
    /// <summary>Groups a series shows, at most.</summary>
    public const int MaxSeriesGroups = 50;

    /// <summary>
    /// Latency sketch elements the API merges itself, at most, bounded by the requests of the answer's groups: above
    /// it, or when one of its arrays could hold more than <see cref="MaxElementsPerArray"/>, PostgreSQL merges their
    /// sketches, one per row of the answer.
    /// </summary>
    public const int MaxElementsMergedByTheApi = 100_000;

    /// <summary>
    /// Elements of one array the API reads unmerged, at most: 10,000 longs are 80 KB, under the runtime's 85,000-byte
    /// threshold of the large object heap, which only a gen2 collection frees (see <see cref="Ingest.LogRecord"/>).
    /// </summary>
    public const int MaxElementsPerArray = 10_000;

    // Each query reads the client's cells in the window once (a materialized CTE) and picks the busiest groups' cells
    // with "= ANY" of their names rather than a join, so its plan does not depend on how many cells PostgreSQL expects.
    // Npgsql prepares these statements, and PostgreSQL's generic plan for the earlier shape (three reads of the cells,
    // joined to the busiest groups) guessed 5 cells and read them again per group: 60 ms instead of 17 for a client
    // with 4,000 cells in a month (docs/performance.md, run 20). "busiest" also counts every group of the window (window
    // functions run before the LIMIT), which with the groups' requests decides who merges the sketches (Sketches).
    private static readonly string EndpointsSql = $"""
        WITH {RollupCells.Sql(_ => "method, endpoint, status_class, request_count, latency", client: "$1", start: "$2", end: "$3")},
        busiest AS MATERIALIZED (
            SELECT method, endpoint, sum(request_count)::bigint AS total,
                   coalesce(sum(request_count) FILTER (WHERE status_class = 4), 0)::bigint AS client_errors,
                   coalesce(sum(request_count) FILTER (WHERE status_class = 5), 0)::bigint AS server_errors,
                   count(*) OVER () AS groups
            FROM cells
            GROUP BY method, endpoint
            ORDER BY total DESC, method COLLATE "C", endpoint COLLATE "C"
            LIMIT $4),
        {Sketches("method, endpoint", "(method, endpoint) = ANY (ARRAY(SELECT (method, endpoint) FROM busiest))", largest: "total")}
        SELECT busiest.method, busiest.endpoint, busiest.total, busiest.client_errors, busiest.server_errors, sketches.latency,
               (SELECT by_api FROM merging)
        FROM busiest
        LEFT JOIN sketches ON (sketches.method, sketches.endpoint) = (busiest.method, busiest.endpoint)
        ORDER BY busiest.total DESC, busiest.method COLLATE "C", busiest.endpoint COLLATE "C"
        """;

    private static readonly FrozenDictionary<(SeriesGrouping, bool Percentiles), string> SeriesSqls = Enum.GetValues<SeriesGrouping>()
        .SelectMany(grouping => new[] { false, true }.Select(percentiles => KeyValuePair.Create((grouping, percentiles), SeriesSql(grouping, percentiles))))
        .ToFrozenDictionary();

    private static readonly string KeyDailySql = $"""
        WITH {RollupCells.Sql(time => $"({time} AT TIME ZONE 'UTC')::date AS day, request_count", client: "$1", start: "$3", end: "$4", filter: "AND api_key_id = $2")}
        SELECT day, sum(request_count)::bigint FROM cells GROUP BY day
        """;

    /// <summary>The <paramref name="limit"/> busiest endpoints of the client over the whole UTC hours from
    /// <paramref name="firstHour"/> to <paramref name="lastHour"/>: most requests first, then by method and endpoint.</summary>
    public async Task<IReadOnlyList<EndpointUsage>> EndpointsAsync(
        Guid clientId, DateTime firstHour, DateTime lastHour, int limit, CancellationToken cancellationToken)
    {
        var endpoints = new List<EndpointUsage>(limit);
        bool? mergedByApi = null;
        var started = Stopwatch.GetTimestamp();
        await using (var command = dataSource.CreateCommand(EndpointsSql))
        {
            command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = clientId });
            command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = firstHour });
            command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = lastHour.AddHours(1) });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var latency = Percentiles.Of(Sketch(reader, 5));
                mergedByApi = reader.GetBoolean(6);
                endpoints.Add(new EndpointUsage(reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4),
                    latency.P50, latency.P95, latency.P99));
            }
        }

        metrics.Queried("endpoints", Stopwatch.GetElapsedTime(started), mergedByApi);
        return endpoints;
    }

    /// <summary>The client's series over <paramref name="window"/>, its <paramref name="limit"/> busiest groups.</summary>
    public async Task<UsageSeries> SeriesAsync(
        Guid clientId, SeriesWindow window, SeriesGrouping grouping, bool percentiles, int limit, CancellationToken cancellationToken)
    {
        var buckets = window.BucketCount;
        // A point's sketch is read into its percentiles at once: kept whole, an hourly series of 50 busy endpoints
        // would hold 16,800 sketches of up to 1,100 buckets each until the last row.
        var lines = new List<(string Group, long Total, long[] Counts, Percentiles[]? Latency)>(limit);
        bool? mergedByApi = null;
        var started = Stopwatch.GetTimestamp();
        await using (var command = dataSource.CreateCommand(SeriesSqls[(grouping, percentiles)]))
        {
            command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = clientId });
            command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = window.Start.UtcDateTime });
            command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = window.End.UtcDateTime });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
            command.Parameters.Add(new NpgsqlParameter<DateTime[]> { TypedValue = [.. window.Boundaries.Select(boundary => boundary.UtcDateTime)] });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var group = reader.GetString(0);
                if (lines.Count == 0 || lines[^1].Group != group)
                {
                    lines.Add((group, reader.GetInt64(1), new long[buckets], percentiles ? new Percentiles[buckets] : null));
                }

                var line = lines[^1];
                var bucket = reader.GetInt32(2);
                line.Counts[bucket] = reader.GetInt64(3);
                if (line.Latency is { } latency)
                {
                    latency[bucket] = Percentiles.Of(Sketch(reader, 4));
                    mergedByApi = reader.GetBoolean(5);
                }
            }
        }

        metrics.Queried("series", Stopwatch.GetElapsedTime(started), mergedByApi);
        if (grouping == SeriesGrouping.None && lines.Count == 0)
        {
            lines.Add(("total", 0, new long[buckets], null));
        }

        var series = lines
            .Select(line => new SeriesLine(line.Group, line.Total, [.. Enumerable.Range(0, buckets).Select(bucket =>
            {
                var latency = line.Latency?[bucket] ?? default;
                return new SeriesPoint(window.LocalStart(bucket),
                    (int)((window.Boundaries[bucket + 1] - window.Boundaries[bucket]).Ticks / TimeSpan.TicksPerHour), line.Counts[bucket],
                    latency.P50, latency.P95, latency.P99);
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

    // The series' busiest groups ($4 of them), then each one's count (and merged sketch) per bucket; a bucket is found
    // among the window's boundaries ($5, whole UTC hours from SeriesWindow) by width_bucket, so days are cut where
    // SeriesWindow cuts them, DST included. Rows come ordered by group rank, then bucket; buckets without cells are absent.
    private static string SeriesSql(SeriesGrouping grouping, bool percentiles)
    {
        var sketches = percentiles
            ? $", {Sketches("line, bucket", "line = ANY (ARRAY(SELECT line FROM busiest))", largest: "largest")}"
            : "";
        return $"""
            WITH {RollupCells.Sql(time => $"{GroupExpression(grouping)} AS line, width_bucket({time}, $5) - 1 AS bucket, request_count{(percentiles ? ", latency" : "")}",
                client: "$1", start: "$2", end: "$3", dayFits: "width_bucket(day_start, $5) = width_bucket(day_start + interval '23 hours', $5)")},
            points AS MATERIALIZED (
                SELECT line, bucket, sum(request_count)::bigint AS count FROM cells GROUP BY line, bucket),
            busiest AS MATERIALIZED (
                SELECT line, sum(count)::bigint AS total{(percentiles ? ", max(count) AS largest, count(*) OVER () AS groups" : "")}
                FROM points
                GROUP BY line
                ORDER BY total DESC, line COLLATE "C"
                LIMIT $4){sketches}
            SELECT busiest.line, busiest.total, points.bucket, points.count,
                   {(percentiles ? "sketches.latency, (SELECT by_api FROM merging)" : "NULL::bigint[], NULL::boolean")}
            FROM busiest
            JOIN points ON points.line = busiest.line
            {(percentiles ? "LEFT JOIN sketches ON (sketches.line, sketches.bucket) = (points.line, points.bucket)" : "")}
            WHERE points.line = ANY (ARRAY(SELECT line FROM busiest))
            ORDER BY busiest.total DESC, busiest.line COLLATE "C", points.bucket
            """;
    }

    /// <summary>
    /// Two CTEs: <c>merging</c>, whose <c>by_api</c> says who merges, and <c>sketches</c>, giving per group
    /// (<paramref name="groups"/>) of the busiest ones (those <paramref name="filter"/> keeps
    /// of the <c>cells</c>), the group's columns and <c>latency</c>: its cells' latency sketches, packed in one array
    /// that <see cref="LatencySketch.Merge"/> reads. When the busiest groups' requests are at most
    /// <see cref="MaxElementsMergedByTheApi"/> and no array's (<paramref name="largest"/>, a column of <c>busiest</c>)
    /// more than <see cref="MaxElementsPerArray"/>, the array is the elements as stored, repeats and all, and the API
    /// sums the repeats: PostgreSQL groups elements by hashing at about a microsecond each, most of a typical client's
    /// elements are distinct buckets of sparse hourly cells, and the API's dictionary does it for a fraction of that
    /// (docs/performance.md, runs 26–28). Requests bound the elements (each element counts at least one request) and
    /// cost nothing to sum, where counting the elements would unpack every cell's stored sketch. Otherwise the
    /// database merges them, each array as long as its distinct buckets (about 1,100 at most) however many cells were
    /// merged. The filter is skipped when every group is among the busiest (comparing a row with a list of rows costs
    /// about a microsecond a cell). The enclosing statement's <c>busiest</c> has each group's <c>total</c> and the
    /// window's count of <c>groups</c>, and its <c>$4</c> is the limit.
    /// </summary>
    private static string Sketches(string groups, string filter, string largest) => $"""
        merging AS (
            SELECT sum(total) <= {MaxElementsMergedByTheApi} AND max({largest}) <= {MaxElementsPerArray} AS by_api,
                   max(groups) <= $4 AS every_group
            FROM busiest),
        sketches AS (
            SELECT {groups}, array_agg(element) AS latency
            FROM (SELECT {groups}, unnest(latency) AS element FROM cells
                  WHERE (SELECT by_api FROM merging) AND ((SELECT every_group FROM merging) OR {filter})) AS elements
            GROUP BY {groups}
            UNION ALL
            SELECT {groups}, array_agg((sketch_key << {LatencySketch.CountBits}) | count)
            FROM (
                SELECT {groups}, element >> {LatencySketch.CountBits} AS sketch_key,
                       sum(element & {(1L << LatencySketch.CountBits) - 1})::bigint AS count
                FROM cells
                CROSS JOIN unnest(cells.latency) AS element
                WHERE NOT (SELECT by_api FROM merging) AND {filter}
                GROUP BY {groups}, sketch_key) AS buckets
            GROUP BY {groups})
        """;

    private static LatencySketch? Sketch(NpgsqlDataReader reader, int column)
    {
        if (reader.IsDBNull(column))
        {
            return null;
        }

        var sketch = new LatencySketch();
        sketch.Merge(reader.GetFieldValue<long[]>(column));
        return sketch;
    }

    private static string GroupExpression(SeriesGrouping grouping) => grouping switch
    {
        SeriesGrouping.Endpoint => "method || ' ' || endpoint",
        SeriesGrouping.Status => "CASE WHEN status_class > 0 THEN status_class || 'xx' ELSE 'none' END",
        SeriesGrouping.Key => "api_key_id::text",
        _ => "'total'",
    };

    /// <summary>The percentiles every answer gives of a sketch, none without one.</summary>
    private readonly record struct Percentiles(double? P50, double? P95, double? P99)
    {
        public static Percentiles Of(LatencySketch? sketch) =>
            sketch is null ? default : new(sketch.Quantile(0.5), sketch.Quantile(0.95), sketch.Quantile(0.99));
    }
}
