using System.Diagnostics;
using Npgsql;
using Tracker.ApiService.Auth;
using Tracker.Data.Entities;

namespace Tracker.ApiService.Usage;

/// <summary>
/// The analytics queries: single SQL statements summing the hourly totals (<c>usage_hourly_totals</c>: the folded
/// totals of <c>usage_hourly</c>, and what the detailed cells of each hour marked since add to them, see
/// <see cref="HourlyTotalsFold"/>), never over the logs, so their cost depends on the window asked for, not on how
/// many logs exist. Day and hour boundaries are UTC whatever the session's time zone.
/// </summary>
public sealed class UsageQueries(NpgsqlDataSource dataSource, UsageMetrics metrics)
{
    public const int MaxDays = 90;
    public const int MaxHours = 720;
    public const int MaxLimit = 100;

    // Served by the primary keys (client_id, hour_start): a range scan of at most MaxDays * 24 rows, and the cells of
    // the client's marked hours.
    private static readonly string DailySql = $"""
        SELECT (hour_start AT TIME ZONE 'UTC')::date AS day, sum(request_count)::bigint
        FROM {HourlyUsageMark.TotalsView}
        WHERE client_id = $1 AND hour_start >= $2 AND hour_start < $3
        GROUP BY day
        """;

    // Served by ix_usage_hourly_hour_start (INCLUDE client_id, request_count): an index-only scan of the window, and
    // the cells of the window's marked hours.
    private static readonly string TopSql = $"""
        SELECT totals.client_id, clients.name, clients.email, totals.total
        FROM (
            SELECT client_id, sum(request_count)::bigint AS total
            FROM {HourlyUsageMark.TotalsView}
            WHERE hour_start >= $1 AND hour_start <= $2
            GROUP BY client_id
            ORDER BY total DESC, client_id
            LIMIT $3) AS totals
        JOIN clients ON clients.id = totals.client_id
        ORDER BY totals.total DESC, totals.client_id
        """;

    /// <summary>The client's count for each of the <see cref="MaxDays"/> UTC days ending on <paramref name="lastDay"/>, zeros included.</summary>
    public async Task<DailyCounts> DailyAsync(Guid clientId, DateOnly lastDay, CancellationToken cancellationToken)
    {
        var firstDay = lastDay.AddDays(1 - MaxDays);
        var counts = new long[MaxDays];
        var started = Stopwatch.GetTimestamp();
        await using (var command = dataSource.CreateCommand(DailySql))
        {
            command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = clientId });
            command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = StartOfUtcDay(firstDay) });
            command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = StartOfUtcDay(lastDay.AddDays(1)) });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var day = reader.GetFieldValue<DateOnly>(0);
                counts[day.DayNumber - firstDay.DayNumber] = reader.GetInt64(1);
            }
        }

        metrics.Queried("daily", Stopwatch.GetElapsedTime(started));
        return new DailyCounts(lastDay, counts);
    }

    /// <summary>The <paramref name="limit"/> busiest clients over the whole UTC hours from <paramref name="firstHour"/> to <paramref name="lastHour"/>.</summary>
    public async Task<IReadOnlyList<TopClient>> TopAsync(DateTime firstHour, DateTime lastHour, int limit, CancellationToken cancellationToken)
    {
        var clients = new List<TopClient>(limit);
        var started = Stopwatch.GetTimestamp();
        await using (var command = dataSource.CreateCommand(TopSql))
        {
            command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = firstHour });
            command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = lastHour });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                clients.Add(new TopClient(reader.GetGuid(0), reader.GetString(1), EmailAddresses.Mask(reader.GetString(2)), reader.GetInt64(3)));
            }
        }

        metrics.Queried("top", Stopwatch.GetElapsedTime(started));
        return clients;
    }

    private static DateTime StartOfUtcDay(DateOnly day) => day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
}
