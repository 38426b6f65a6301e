using Npgsql;
using Tracker.Data;

namespace Tracker.ApiService.Usage;

/// <summary>
/// Folds the detailed hourly rollups of each whole UTC day into one row per cell of the day
/// (<c>usage_daily_details</c>), so that a month's breakdown reads about a twentieth of the cells
/// (<see cref="RollupCells"/>). A day is folded once it ended <see cref="Lag"/> ago, oldest first, and
/// <c>usage_daily_compaction</c> remembers how far it came.
/// </summary>
/// <remarks>
/// <para>
/// Logs may arrive for any day of the retention window, long after it was folded. Ingest marks every past day it adds
/// a cell to (<c>usage_daily_stale</c>, per client, in the transaction that adds the cell); reads answer a marked day
/// from the hourly cells, and this job folds the day again and removes the mark. Each transaction here first deletes
/// the marks it settles, then reads the hourly cells in a later statement, so a cell whose transaction committed
/// before the deletion is read, and one that commits afterwards leaves its mark behind: no count is lost to the daily
/// tier nor counted twice in an answer. A transaction that adds a cell without marking it, because its day was not yet
/// past, commits within moments, long before the day's <see cref="Lag"/> is over.
/// </para>
/// <para>
/// Runs at start and every <see cref="Interval"/>; several instances may run it at once (an advisory lock serialises
/// their transactions, each of which folds one day or a bounded number of marks).
/// </para>
/// </remarks>
public sealed partial class DailyCompaction(NpgsqlDataSource dataSource, TimeProvider time, ILogger<DailyCompaction> logger)
    : BackgroundService
{
    /// <summary>How long after a UTC day's end it is folded.</summary>
    public static readonly TimeSpan Lag = TimeSpan.FromHours(1);

    private static readonly TimeSpan Interval = TimeSpan.FromMinutes(10);

    // Stale client-days folded again per transaction, at most.
    private const int StaleDaysPerTransaction = 500;

    // The advisory lock each compaction transaction takes (an arbitrary constant, "days" in ASCII).
    private const long CompactionLock = 0x64617973;

    // The next day to fold, if it ended Lag ago: the day after the last one folded, or, the first time, the oldest
    // day with cells. Compared with PostgreSQL's clock, the one ingest's stale marks are decided by.
    private static readonly string NextDaySql = $"""
        SELECT next_day FROM (
            SELECT coalesce(
                (SELECT compacted_through + 1 FROM usage_daily_compaction),
                (SELECT (min(hour_start) AT TIME ZONE 'UTC')::date FROM usage_hourly_details)) AS next_day) AS next
        WHERE (next_day + 1)::timestamp AT TIME ZONE 'UTC' + interval '{(int)Lag.TotalMinutes} minutes' <= now()
        """;

    private const string SettleDayMarks = "DELETE FROM usage_daily_stale WHERE day = @day";

    private const string RecordProgress = """
        INSERT INTO usage_daily_compaction (id, compacted_through) VALUES (1, @day)
        ON CONFLICT (id) DO UPDATE SET compacted_through = excluded.compacted_through
        """;

    // The oldest marks of days already folded; those of days not yet folded are settled when their day is.
    private static readonly string SettleStaleMarks = $"""
        DELETE FROM usage_daily_stale
        WHERE (client_id, day) IN (
            SELECT client_id, day FROM usage_daily_stale
            WHERE day <= (SELECT compacted_through FROM usage_daily_compaction)
            ORDER BY day, client_id
            LIMIT {StaleDaysPerTransaction})
        RETURNING client_id, day
        """;

    private static readonly string FoldDay = Fold("""
        SELECT * FROM usage_hourly_details
        WHERE hour_start >= @day::timestamp AT TIME ZONE 'UTC' AND hour_start < (@day + 1)::timestamp AT TIME ZONE 'UTC'
        """);

    private static readonly string FoldClientDays = Fold("""
        SELECT detail.* FROM unnest(@client_ids, @days) AS stale(client_id, day)
        CROSS JOIN LATERAL (
            SELECT * FROM usage_hourly_details
            WHERE client_id = stale.client_id
              AND hour_start >= stale.day::timestamp AT TIME ZONE 'UTC' AND hour_start < (stale.day + 1)::timestamp AT TIME ZONE 'UTC') AS detail
        """);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        do
        {
            try
            {
                await RunOnceAsync(stoppingToken);
            }
            catch (Exception exception) when (exception is NpgsqlException or TimeoutException)
            {
                // Until a day is folded, reads answer it from its hourly cells: slower, never wrong.
                LogCompactionFailed(exception);
            }
        }
        while (await WaitAsync(timer, stoppingToken));
    }

    /// <summary>Folds every day that is due, then every stale day already folded; returns how many of each.</summary>
    public async Task<(int Days, int StaleDays)> RunOnceAsync(CancellationToken cancellationToken)
    {
        var days = 0;
        while (await FoldNextDayAsync(cancellationToken) is { } day)
        {
            days++;
            LogDayFolded(day);
        }

        var staleDays = 0;
        for (int folded; (folded = await FoldStaleDaysAsync(cancellationToken)) > 0;)
        {
            staleDays += folded;
        }

        if (staleDays > 0)
        {
            LogStaleDaysFolded(staleDays);
        }

        return (days, staleDays);
    }

    private async Task<DateOnly?> FoldNextDayAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await LockAsync(connection, transaction, cancellationToken);
        await using var next = new NpgsqlCommand(NextDaySql, connection, transaction);
        if (await next.ExecuteScalarAsync(cancellationToken) is not DateOnly day)
        {
            return null;
        }

        // Three statements, each with a snapshot of its own: the marks are settled before the cells are read.
        await using var statements = new NpgsqlBatch(connection, transaction);
        foreach (var sql in (string[])[SettleDayMarks, FoldDay, RecordProgress])
        {
            var statement = new NpgsqlBatchCommand(sql);
            statement.Parameters.AddWithValue("day", day);
            statements.BatchCommands.Add(statement);
        }

        statements.Timeout = 0;
        await statements.ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return day;
    }

    private async Task<int> FoldStaleDaysAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await LockAsync(connection, transaction, cancellationToken);
        var clientIds = new List<Guid>();
        var days = new List<DateOnly>();
        await using (var settle = new NpgsqlCommand(SettleStaleMarks, connection, transaction))
        await using (var reader = await settle.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                clientIds.Add(reader.GetGuid(0));
                days.Add(reader.GetFieldValue<DateOnly>(1));
            }
        }

        if (clientIds.Count > 0)
        {
            await using var fold = new NpgsqlCommand(FoldClientDays, connection, transaction) { CommandTimeout = 0 };
            fold.Parameters.Add(new NpgsqlParameter<Guid[]>("client_ids", [.. clientIds]));
            fold.Parameters.Add(new NpgsqlParameter<DateOnly[]>("days", [.. days]));
            await fold.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return clientIds.Count;
    }

    private static async Task LockAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({CompactionLock})", connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    // The hourly cells that source selects, summed per cell of their UTC day, each day's sketch merged bucket by bucket
    // (a concatenation of arrays would copy each one per row), replacing whatever the day held: the hourly cells only
    // ever grow, so the fold of all of them is the day.
    private static string Fold(string source) => $"""
        WITH hourly AS MATERIALIZED (
            SELECT client_id, (hour_start AT TIME ZONE 'UTC')::date AS day, endpoint, method, status_class, api_key_id, request_count, latency
            FROM ({source}) AS source),
        counts AS (
            SELECT client_id, day, endpoint, method, status_class, api_key_id, sum(request_count)::bigint AS request_count
            FROM hourly GROUP BY 1, 2, 3, 4, 5, 6),
        sketches AS (
            SELECT client_id, day, endpoint, method, status_class, api_key_id,
                   array_agg((bucket << {LatencySketch.CountBits}) | total ORDER BY bucket) AS latency
            FROM (SELECT client_id, day, endpoint, method, status_class, api_key_id, element >> {LatencySketch.CountBits} AS bucket,
                         sum(element & {(1L << LatencySketch.CountBits) - 1})::bigint AS total
                  FROM hourly CROSS JOIN unnest(hourly.latency) AS element
                  GROUP BY 1, 2, 3, 4, 5, 6, 7) AS buckets
            GROUP BY 1, 2, 3, 4, 5, 6)
        INSERT INTO usage_daily_details (client_id, day, endpoint, method, status_class, api_key_id, request_count, latency)
        SELECT client_id, day, endpoint, method, status_class, api_key_id, counts.request_count, coalesce(sketches.latency, ARRAY[]::bigint[])
        FROM counts LEFT JOIN sketches USING (client_id, day, endpoint, method, status_class, api_key_id)
        ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (client_id, day, endpoint, method, status_class, api_key_id) DO UPDATE SET
            request_count = excluded.request_count, latency = excluded.latency
        """;

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken stoppingToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Folded the hourly usage cells of {Day} into daily ones")]
    private partial void LogDayFolded(DateOnly day);

    [LoggerMessage(Level = LogLevel.Information, Message = "Folded again {Count} client-day(s) that received logs after they were folded")]
    private partial void LogStaleDaysFolded(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Daily usage compaction failed; it runs again within minutes")]
    private partial void LogCompactionFailed(Exception exception);
}
