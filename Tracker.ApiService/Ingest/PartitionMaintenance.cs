using System.Globalization;
using Microsoft.Extensions.Options;
using Npgsql;
using Tracker.Data;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// Keeps the daily partitions of <c>logs</c> ahead of time (a week ahead, so a late maintenance run never
/// leaves ingest without a partition) and drops those older than <see cref="RetentionOptions.Days"/>.
/// Runs at start and hourly; several instances may run it at once (the work is serialised in PostgreSQL).
/// </summary>
public sealed partial class PartitionMaintenance(
    NpgsqlDataSource dataSource,
    IOptions<RetentionOptions> retention,
    TimeProvider time,
    ILogger<PartitionMaintenance> logger) : BackgroundService
{
    public const int DaysAhead = 7;
    private static readonly TimeSpan Interval = TimeSpan.FromHours(1);

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
                // Partitions exist a week ahead: a failed run is retried next hour long before it matters.
                LogMaintenanceFailed(exception);
            }
        }
        while (await WaitAsync(timer, stoppingToken));
    }

    /// <summary>Creates the missing partitions of the window and drops the expired ones.</summary>
    public async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var today = DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime);
        var oldestKept = today.AddDays(-retention.Value.Days);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        await using (var ensure = new NpgsqlCommand($"SELECT {LogTable.EnsurePartitionsFunction}(@first, @last)", connection, transaction))
        {
            ensure.Parameters.AddWithValue("first", oldestKept);
            ensure.Parameters.AddWithValue("last", today.AddDays(DaysAhead));
            var created = (int)(await ensure.ExecuteScalarAsync(cancellationToken))!;
            if (created > 0)
            {
                LogCreated(created);
            }
        }

        var expired = new List<string>();
        await using (var list = new NpgsqlCommand(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'logs'::regclass",
            connection, transaction))
        await using (var reader = await list.ExecuteReaderAsync(cancellationToken))
        {
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
        }

        // Batch ids only matter while a writer may still be retrying that batch: seconds, not days.
        await using (var prune = new NpgsqlCommand("DELETE FROM ingest_batches WHERE committed_at < now() - interval '1 day'", connection, transaction))
        {
            await prune.ExecuteNonQueryAsync(cancellationToken);
        }

        foreach (var partition in expired)
        {
            await using var drop = new NpgsqlCommand($"DROP TABLE IF EXISTS \"{partition}\"", connection, transaction);
            await drop.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        if (expired.Count > 0)
        {
            LogDropped(expired.Count, retention.Value.Days);
        }
    }

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

    [LoggerMessage(Level = LogLevel.Information, Message = "Created {Count} daily log partition(s)")]
    private partial void LogCreated(int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Dropped {Count} daily log partition(s) older than {Days} days")]
    private partial void LogDropped(int count, int days);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Log partition maintenance failed; it runs again within the hour")]
    private partial void LogMaintenanceFailed(Exception exception);
}
