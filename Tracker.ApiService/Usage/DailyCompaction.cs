using System.Data;
using Npgsql;
using Tracker.ApiService.Storage;
using Tracker.Data;

namespace Tracker.ApiService.Usage;

/// <summary>
/// Folds the detailed hourly rollups of each whole UTC day into one row per cell of the day
/// (<c>usage_daily_details</c>), so that a month's breakdown reads up to 24 times fewer cells
/// (<see cref="RollupCells"/>): a busy client's cells recur hour after hour, a quiet one's hardly do. A day is folded
/// once it ended <see cref="Lag"/> ago, oldest first, and <c>usage_daily_compaction</c> remembers how far it came.
/// </summary>
/// <remarks>
/// <para>
/// Logs may arrive for any day of the retention window, long after it was folded. Ingest marks every past day it adds
/// a cell to (<c>usage_daily_stale</c>, per client, in the transaction that adds the cell, renewing the mark's version
/// if there is one); reads answer a marked day from the hourly cells, and this job folds the day again. Each of its
/// transactions reads the marks it will settle, then folds the cells in a later statement, then removes those marks
/// whose version is still the one it read, locking them first. A cell committed before the fold's statement began
/// is folded; the transaction of one committed later renewed or created its mark, which then stays (a removal that
/// meets a renewal not yet committed waits for it and then leaves the mark). So no count is lost to the daily tier,
/// and none is read twice: reads take a day from one tier or the other, in one snapshot. A transaction that adds a
/// cell without marking it, because its day was not yet past, commits within moments, long before the day's
/// <see cref="Lag"/> is over. Ingest waits for this job only while a removal commits, never while it folds.
/// </para>
/// <para>
/// Runs at start and every <see cref="Interval"/>; several instances may run it at once (an advisory lock serialises
/// their transactions, each of which folds one day, or at most <see cref="StaleDaysPerTransaction"/> marked days, once
/// per run however often they are marked again).
/// </para>
/// </remarks>
public sealed partial class DailyCompaction(NpgsqlDataSource dataSource, TimeProvider time, ILogger<DailyCompaction> logger)
    : PeriodicDatabaseJob(Interval, time)
{
    /// <summary>How long after a UTC day's end it is folded.</summary>
    public static readonly TimeSpan Lag = TimeSpan.FromHours(1);

    private static readonly TimeSpan Interval = TimeSpan.FromMinutes(10);

    // Marked client-days folded again per transaction, at most.
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

    private const string DayMarks = "SELECT client_id, day, version FROM usage_daily_stale WHERE day = @day";

    // The next page of marks of days already folded, after the last one settled (those of days not yet folded are
    // settled when their day is).
    private static readonly string StaleMarks = $"""
        SELECT client_id, day, version FROM usage_daily_stale
        WHERE day <= (SELECT compacted_through FROM usage_daily_compaction) AND (day, client_id) > (@after_day, @after_client)
        ORDER BY day, client_id
        LIMIT {StaleDaysPerTransaction}
        """;

    // Locks the marks read before the fold in the order ingest marks them (day, then client); a mark renewed since
    // then no longer matches once its renewal has committed, and stays.
    private const string RemoveSettledMarks = """
        WITH settled AS (
            SELECT client_id, day FROM usage_daily_stale
            WHERE (client_id, day, version) IN (SELECT * FROM unnest(@client_ids, @days, @versions))
            ORDER BY day, client_id
            FOR UPDATE)
        DELETE FROM usage_daily_stale AS stale USING settled
        WHERE (stale.client_id, stale.day) = (settled.client_id, settled.day)
        """;

    private const string RecordProgress = """
        INSERT INTO usage_daily_compaction (id, compacted_through) VALUES (1, @day)
        ON CONFLICT (id) DO UPDATE SET compacted_through = excluded.compacted_through
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

    protected override Task RunScheduledAsync(CancellationToken cancellationToken) => RunOnceAsync(cancellationToken);

    // Until a day is folded, reads answer it from its hourly cells: slower, never wrong.
    protected override void OnRunFailed(Exception exception) => LogCompactionFailed(exception);

    /// <summary>Folds every day that is due, then every marked day already folded; returns how many of each.</summary>
    public async Task<(int Days, int StaleDays)> RunOnceAsync(CancellationToken cancellationToken)
    {
        var days = 0;
        while (await FoldNextDayAsync(cancellationToken) is { } day)
        {
            days++;
            LogDayFolded(day);
        }

        var staleDays = 0;
        var after = (Day: DateOnly.MinValue, ClientId: Guid.Empty);
        while (await FoldStaleDaysAsync(after, cancellationToken) is { Count: > 0 } marks)
        {
            staleDays += marks.Count;
            after = (marks[^1].Day, marks[^1].ClientId);
            if (marks.Count < StaleDaysPerTransaction)
            {
                break;
            }
        }

        if (staleDays > 0)
        {
            LogStaleDaysFolded(staleDays);
        }

        return (days, staleDays);
    }

    /// <summary>
    /// Forgets every day folded, so that the next run folds them all again: for cells written without marks, as the
    /// benchmark's loader writes history.
    /// </summary>
    public async Task ForgetAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await BeginLockedAsync(connection, cancellationToken);
        await using var forget = new NpgsqlCommand(
            "DELETE FROM usage_daily_compaction; DELETE FROM usage_daily_details; DELETE FROM usage_daily_stale", connection, transaction);
        await forget.ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    private async Task<DateOnly?> FoldNextDayAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await BeginLockedAsync(connection, cancellationToken);
        await using var next = new NpgsqlCommand(NextDaySql, connection, transaction);
        if (await next.ExecuteScalarAsync(cancellationToken) is not DateOnly day)
        {
            return null;
        }

        await using var read = new NpgsqlCommand(DayMarks, connection, transaction);
        read.Parameters.AddWithValue("day", day);
        var marks = await ReadMarksAsync(read, cancellationToken);
        await using var fold = new NpgsqlCommand(FoldDay, connection, transaction) { CommandTimeout = 0 };
        fold.Parameters.AddWithValue("day", day);
        await fold.ExecuteNonQueryAsync(cancellationToken);
        await RemoveSettledMarksAsync(connection, transaction, marks, cancellationToken);
        await using var progress = new NpgsqlCommand(RecordProgress, connection, transaction);
        progress.Parameters.AddWithValue("day", day);
        await progress.ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return day;
    }

    private async Task<List<Mark>> FoldStaleDaysAsync((DateOnly Day, Guid ClientId) after, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await BeginLockedAsync(connection, cancellationToken);
        await using var read = new NpgsqlCommand(StaleMarks, connection, transaction);
        read.Parameters.AddWithValue("after_day", after.Day);
        read.Parameters.AddWithValue("after_client", after.ClientId);
        var marks = await ReadMarksAsync(read, cancellationToken);
        if (marks.Count > 0)
        {
            await using var fold = new NpgsqlCommand(FoldClientDays, connection, transaction) { CommandTimeout = 0 };
            fold.Parameters.Add(new NpgsqlParameter<Guid[]>("client_ids", [.. marks.Select(mark => mark.ClientId)]));
            fold.Parameters.Add(new NpgsqlParameter<DateOnly[]>("days", [.. marks.Select(mark => mark.Day)]));
            await fold.ExecuteNonQueryAsync(cancellationToken);
            await RemoveSettledMarksAsync(connection, transaction, marks, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return marks;
    }

    private static async Task<List<Mark>> ReadMarksAsync(NpgsqlCommand read, CancellationToken cancellationToken)
    {
        var marks = new List<Mark>();
        await using var reader = await read.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            marks.Add(new Mark(reader.GetGuid(0), reader.GetFieldValue<DateOnly>(1), reader.GetInt64(2)));
        }

        return marks;
    }

    private static async Task RemoveSettledMarksAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, List<Mark> marks, CancellationToken cancellationToken)
    {
        if (marks.Count == 0)
        {
            return;
        }

        await using var remove = new NpgsqlCommand(RemoveSettledMarks, connection, transaction);
        remove.Parameters.Add(new NpgsqlParameter<Guid[]>("client_ids", [.. marks.Select(mark => mark.ClientId)]));
        remove.Parameters.Add(new NpgsqlParameter<DateOnly[]>("days", [.. marks.Select(mark => mark.Day)]));
        remove.Parameters.Add(new NpgsqlParameter<long[]>("versions", [.. marks.Select(mark => mark.Version)]));
        await remove.ExecuteNonQueryAsync(cancellationToken);
    }

    // Every compaction transaction: read committed (each statement sees what committed before it began, which the
    // order of reading marks, folding and removing them relies on), holding the compaction's lock.
    private static async Task<NpgsqlTransaction> BeginLockedAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken);
        await using var command = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({CompactionLock})", connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
        return transaction;
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

    private readonly record struct Mark(Guid ClientId, DateOnly Day, long Version);

    [LoggerMessage(Level = LogLevel.Information, Message = "Folded the hourly usage cells of {Day} into daily ones")]
    private partial void LogDayFolded(DateOnly day);

    [LoggerMessage(Level = LogLevel.Information, Message = "Folded again {Count} client-day(s) that received logs after they were folded")]
    private partial void LogStaleDaysFolded(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Daily usage compaction failed; it runs again within minutes")]
    private partial void LogCompactionFailed(Exception exception);
}
