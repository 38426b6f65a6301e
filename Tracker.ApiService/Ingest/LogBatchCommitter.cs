using Npgsql;
using NpgsqlTypes;

namespace Tracker.ApiService.Ingest;

/// <summary>Writes batches of logs; see <see cref="LogBatchCommitter"/>.</summary>
public interface ILogBatchCommitter
{
    /// <summary>
    /// Commits every log of <paramref name="batch"/> under <paramref name="batchId"/>. Throws
    /// <see cref="AmbiguousCommitException"/> when the outcome of COMMIT is unknown.
    /// </summary>
    Task CommitAsync(IReadOnlyList<PendingLogs> batch, Guid batchId, CancellationToken cancellationToken);

    /// <summary>Whether the batch with this id was committed (after an <see cref="AmbiguousCommitException"/>).</summary>
    Task<bool> WasCommittedAsync(Guid batchId, CancellationToken cancellationToken);
}

/// <summary>The connection failed while COMMIT was in flight: the batch may or may not be committed.</summary>
public sealed class AmbiguousCommitException(Guid batchId, IReadOnlyList<PendingLogs> batch, Exception innerException)
    : Exception("The outcome of committing an ingest batch is unknown.", innerException)
{
    public Guid BatchId { get; } = batchId;

    /// <summary>The requests whose logs that commit held.</summary>
    public IReadOnlyList<PendingLogs> Batch { get; } = batch;
}

/// <summary>
/// Writes a batch in one transaction: the logs with binary COPY, then one round trip that adds them to the
/// hourly usage rollups and records the batch id. Either all of it is committed or none is.
/// </summary>
public sealed class LogBatchCommitter(NpgsqlDataSource dataSource) : ILogBatchCommitter
{
    private const string CopyCommand =
        "COPY logs (client_id, api_key_id, occurred_at, ip_address, method, endpoint) FROM STDIN (FORMAT BINARY)";

    // Rows are sorted by key so that concurrent writers lock rollup rows in the same order and cannot deadlock.
    private const string RollupUpsert = """
        INSERT INTO usage_hourly (client_id, hour_start, request_count)
        SELECT * FROM unnest(@client_ids, @hour_starts, @counts)
        ON CONFLICT (client_id, hour_start) DO UPDATE SET request_count = usage_hourly.request_count + excluded.request_count
        """;

    public async Task CommitAsync(IReadOnlyList<PendingLogs> batch, Guid batchId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        var rollup = new Dictionary<(Guid ClientId, DateTime HourStart), long>();
        await using (var importer = await connection.BeginBinaryImportAsync(CopyCommand, cancellationToken))
        {
            foreach (var pending in batch)
            {
                foreach (var log in pending.Logs)
                {
                    // Synchronous writes fill Npgsql's buffer and only block when it flushes (every few kB);
                    // awaiting each of six fields per row cost more CPU than the COPY itself.
                    importer.StartRow();
                    importer.Write(log.ClientId, NpgsqlDbType.Uuid);
                    importer.Write(log.ApiKeyId, NpgsqlDbType.Uuid);
                    importer.Write(log.OccurredAt.UtcDateTime, NpgsqlDbType.TimestampTz);
                    importer.Write(log.IpAddress, NpgsqlDbType.Inet);
                    importer.Write(log.Method, NpgsqlDbType.Varchar);
                    importer.Write(log.Endpoint, NpgsqlDbType.Varchar);

                    var utc = log.OccurredAt.UtcDateTime;
                    var hour = new DateTime(utc.Year, utc.Month, utc.Day, utc.Hour, 0, 0, DateTimeKind.Utc);
                    rollup[(log.ClientId, hour)] = rollup.GetValueOrDefault((log.ClientId, hour)) + 1;
                }
            }

            await importer.CompleteAsync(cancellationToken);
        }

        var rows = rollup.OrderBy(row => row.Key.ClientId).ThenBy(row => row.Key.HourStart).ToList();
        await using (var statements = new NpgsqlBatch(connection, transaction))
        {
            var upsert = new NpgsqlBatchCommand(RollupUpsert);
            upsert.Parameters.Add(new NpgsqlParameter<Guid[]>("client_ids", rows.Select(row => row.Key.ClientId).ToArray()));
            upsert.Parameters.Add(new NpgsqlParameter<DateTime[]>("hour_starts", rows.Select(row => row.Key.HourStart).ToArray()));
            upsert.Parameters.Add(new NpgsqlParameter<long[]>("counts", rows.Select(row => row.Value).ToArray()));
            var record = new NpgsqlBatchCommand("INSERT INTO ingest_batches (id) VALUES (@id)");
            record.Parameters.Add(new NpgsqlParameter<Guid>("id", batchId));
            statements.BatchCommands.Add(upsert);
            statements.BatchCommands.Add(record);
            await statements.ExecuteNonQueryAsync(cancellationToken);
        }

        try
        {
            await transaction.CommitAsync(cancellationToken);
        }
        catch (Exception exception) when (exception is not PostgresException)
        {
            // A server error means "not committed"; a broken connection leaves it unknown.
            throw new AmbiguousCommitException(batchId, batch, exception);
        }
    }

    public async Task<bool> WasCommittedAsync(Guid batchId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT EXISTS (SELECT 1 FROM ingest_batches WHERE id = @id)");
        command.Parameters.Add(new NpgsqlParameter<Guid>("id", batchId));
        return (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>
    /// A row the database refuses for its content (invalid data class 22, constraint class 23 — such as a day
    /// with no partition): retrying cannot help, isolating it can. Everything else is treated as transient.
    /// </summary>
    public static bool IsRefusal(Exception exception) =>
        exception is PostgresException { IsTransient: false } postgres
        && (postgres.SqlState.StartsWith("22", StringComparison.Ordinal) || postgres.SqlState.StartsWith("23", StringComparison.Ordinal));
}
