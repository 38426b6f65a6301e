using System.Globalization;
using Microsoft.Extensions.Options;
using Npgsql;
using Tracker.ApiService.Storage;
using Tracker.Data;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// Keeps the daily partitions of <c>logs</c> ahead of time (a week ahead, so a late maintenance run never
/// leaves ingest without a partition) and drops those older than <see cref="RetentionOptions.Days"/>; deletes the
/// hourly and daily rollups older than <see cref="RetentionOptions.RollupDays"/>.
/// Runs at start and hourly; several instances may run it at once (the work is serialised in PostgreSQL).
/// </summary>
public sealed partial class PartitionMaintenance(
    NpgsqlDataSource dataSource,
    IOptions<RetentionOptions> retention,
    TimeProvider time,
    ILogger<PartitionMaintenance> logger) : PeriodicDatabaseJob(TimeSpan.FromHours(1), time)
{
    public const int DaysAhead = 7;

    // The advisory lock every instance's partition DDL takes (an arbitrary constant, "logs" in ASCII). The
    // ensure-partitions function takes its own lock too: that one still guards the migration worker's call.
    private const long DdlLock = 0x6C6F6773;

    /// <summary>How long one DDL statement may wait for its lock before giving up and trying again later.</summary>
    private static readonly TimeSpan LockWait = TimeSpan.FromMilliseconds(100);

    /// <summary>How long one statement is retried within a run; past it, the next hourly run tries again.</summary>
    private static readonly TimeSpan LockRetryBudget = TimeSpan.FromMinutes(2);

    protected override Task RunScheduledAsync(CancellationToken cancellationToken) => RunOnceAsync(cancellationToken);

    // Partitions exist a week ahead: a failed run is retried next hour long before it matters.
    protected override void OnRunFailed(Exception exception) => LogMaintenanceFailed(exception);

    /// <summary>Creates the missing partitions of the window and drops the expired ones.</summary>
    /// <remarks>
    /// Partition DDL needs an exclusive lock on <c>logs</c>, and a DDL statement waiting for that lock (behind a
    /// long report, say) makes every later COPY wait behind it: ingest would stall. So each statement runs in a
    /// transaction of its own that waits at most <see cref="LockWait"/> for its lock, and is retried with backoff
    /// until <see cref="LockRetryBudget"/> is spent; ingest is held up by at most one short wait at a time.
    /// </remarks>
    public async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var today = DateOnly.FromDateTime(Time.GetUtcNow().UtcDateTime);
        var oldestKept = today.AddDays(-retention.Value.Days);

        var created = 0;
        // Newest first: the days ingest needs next come before old gaps (after Retention:Days grew, say).
        foreach (var day in (await MissingDaysAsync(oldestKept, today.AddDays(DaysAhead), cancellationToken)).OrderDescending())
        {
            created += await RunDdlAsync($"SELECT {LogTable.EnsurePartitionsFunction}(@day, @day)", day, cancellationToken);
        }

        if (created > 0)
        {
            LogCreated(created);
        }

        var expired = await ExpiredPartitionsAsync(oldestKept, cancellationToken);
        foreach (var partition in expired)
        {
            await RunDdlAsync($"DROP TABLE IF EXISTS \"{partition}\"", day: null, cancellationToken);
        }

        if (expired.Count > 0)
        {
            LogDropped(expired.Count, retention.Value.Days);
        }

        await DeleteExpiredRollupsAsync(today.AddDays(-retention.Value.RollupDays), cancellationToken);
    }

    /// <summary>
    /// Deletes rollup hours and days before <paramref name="oldestKept"/> (UTC midnight). Row deletes of hours long past take
    /// no lock ingest waits for: ingest only touches the hours its logs fall in, within <see cref="RetentionOptions.Days"/>.
    /// </summary>
    private async Task DeleteExpiredRollupsAsync(DateOnly oldestKept, CancellationToken cancellationToken)
    {
        await using var statements = dataSource.CreateBatch();
        foreach (var table in (string[])["usage_hourly", "usage_hourly_details", "usage_hourly_endpoints"])
        {
            statements.BatchCommands.Add(DeleteHoursBefore(table, oldestKept));
        }

        foreach (var table in (string[])["usage_daily_details", "usage_daily_stale"])
        {
            var delete = new NpgsqlBatchCommand($"DELETE FROM {table} WHERE day < @oldest");
            delete.Parameters.AddWithValue("oldest", oldestKept);
            statements.BatchCommands.Add(delete);
        }

        // An expired hour's mark goes with its cells in this one transaction: nothing is left to fold. Last, so that
        // the marks table (which the fold locks, ingest queued behind it) is held only until the commit.
        statements.BatchCommands.Add(DeleteHoursBefore("usage_hourly_marks", oldestKept));

        await statements.ExecuteNonQueryAsync(cancellationToken);
        var deleted = statements.BatchCommands.Sum((NpgsqlBatchCommand command) => (long)command.Rows);
        if (deleted > 0)
        {
            LogRollupsDeleted(deleted, retention.Value.RollupDays);
        }
    }

    private static NpgsqlBatchCommand DeleteHoursBefore(string table, DateOnly oldestKept)
    {
        var delete = new NpgsqlBatchCommand($"DELETE FROM {table} WHERE hour_start < @oldest");
        delete.Parameters.AddWithValue("oldest", oldestKept.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc));
        return delete;
    }

    private async Task<List<DateOnly>> MissingDaysAsync(DateOnly first, DateOnly last, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand($"""
            SELECT day::date FROM generate_series(@first::date, @last::date, interval '1 day') AS day
            WHERE to_regclass('{LogTable.PartitionPrefix}' || to_char(day, 'YYYYMMDD')) IS NULL
            """);
        command.Parameters.AddWithValue("first", first);
        command.Parameters.AddWithValue("last", last);
        var days = new List<DateOnly>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            days.Add(reader.GetFieldValue<DateOnly>(0));
        }

        return days;
    }

    private async Task<List<string>> ExpiredPartitionsAsync(DateOnly oldestKept, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'logs'::regclass");
        var expired = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var name = reader.GetString(0);
            if (name.StartsWith(LogTable.PartitionPrefix, StringComparison.Ordinal)
                && DateOnly.TryParseExact(name[LogTable.PartitionPrefix.Length..], "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day)
                && day < oldestKept)
            {
                expired.Add(name);
            }
        }

        return expired;
    }

    /// <summary>Runs one DDL statement in a short transaction that gives up its lock wait quickly, retrying.</summary>
    private async Task<int> RunDdlAsync(string sql, DateOnly? day, CancellationToken cancellationToken)
    {
        var started = Time.GetTimestamp();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                await using var statements = new NpgsqlBatch(connection, transaction);
                statements.BatchCommands.Add(new NpgsqlBatchCommand($"SET LOCAL lock_timeout = {(int)LockWait.TotalMilliseconds}"));
                // One instance's DDL at a time: every instance runs maintenance on its own timer, and PostgreSQL fails
                // a partition created or dropped by two sessions at once (42P07, or XX000 "could not find tuple for
                // parent"). Waiting for this lock is bounded by lock_timeout and retried like any other. An advisory
                // lock does not refresh this session's catalog caches; locking the table then does, so the DDL sees
                // the partitions the instance before it created or dropped.
                statements.BatchCommands.Add(new NpgsqlBatchCommand($"SELECT pg_advisory_xact_lock({DdlLock})"));
                statements.BatchCommands.Add(new NpgsqlBatchCommand($"LOCK TABLE {LogTable.Name} IN ACCESS SHARE MODE"));
                var ddl = new NpgsqlBatchCommand(sql);
                if (day is { } value)
                {
                    ddl.Parameters.AddWithValue("day", value);
                }

                statements.BatchCommands.Add(ddl);
                var created = 0;
                await using (var reader = await statements.ExecuteReaderAsync(cancellationToken))
                {
                    do
                    {
                        if (reader.FieldCount > 0 && await reader.ReadAsync(cancellationToken) && reader.GetValue(0) is int count)
                        {
                            created = count;
                        }
                    }
                    while (await reader.NextResultAsync(cancellationToken));
                }

                await transaction.CommitAsync(cancellationToken);
                return created;
            }
            catch (PostgresException exception) when (exception.SqlState == PostgresErrorCodes.LockNotAvailable
                && Time.GetElapsedTime(started) < LockRetryBudget)
            {
                LogLockBusy(attempt);
                var backoff = Math.Min(2_000, 100 * attempt) + Random.Shared.Next(0, 100);
                await Task.Delay(TimeSpan.FromMilliseconds(backoff), Time, cancellationToken);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Created {Count} daily log partition(s)")]
    private partial void LogCreated(int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Dropped {Count} daily log partition(s) older than {Days} days")]
    private partial void LogDropped(int count, int days);

    [LoggerMessage(Level = LogLevel.Information, Message = "Deleted {Count} rollup row(s) older than {Days} days")]
    private partial void LogRollupsDeleted(long count, int days);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Partition maintenance could not take its lock at once (attempt {Attempt}); retrying so that ingest does not wait behind it")]
    private partial void LogLockBusy(int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Log partition maintenance failed; it runs again within the hour")]
    private partial void LogMaintenanceFailed(Exception exception);
}
