using Npgsql;
using NpgsqlTypes;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// Writes a batch in one transaction: the logs with binary COPY, then one statement that adds them to the
/// hourly usage rollups. Either both are committed or neither is.
/// </summary>
public sealed class LogBatchCommitter(NpgsqlDataSource dataSource)
{
    private const string CopyCommand =
        "COPY logs (client_id, api_key_id, occurred_at, ip_address, method, endpoint) FROM STDIN (FORMAT BINARY)";

    // Rows are sorted by key so that concurrent writers lock rollup rows in the same order and cannot deadlock.
    private const string RollupUpsert = """
        INSERT INTO usage_hourly (client_id, hour_start, request_count)
        SELECT * FROM unnest(@client_ids, @hour_starts, @counts)
        ON CONFLICT (client_id, hour_start) DO UPDATE SET request_count = usage_hourly.request_count + excluded.request_count
        """;

    /// <summary>Commits every log of <paramref name="batch"/>; returns the clients whose usage changed.</summary>
    public async Task<IReadOnlyCollection<Guid>> CommitAsync(IReadOnlyList<PendingLogs> batch, CancellationToken cancellationToken)
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
        await using (var upsert = new NpgsqlCommand(RollupUpsert, connection, transaction))
        {
            upsert.Parameters.Add(new NpgsqlParameter<Guid[]>("client_ids", rows.Select(row => row.Key.ClientId).ToArray()));
            upsert.Parameters.Add(new NpgsqlParameter<DateTime[]>("hour_starts", rows.Select(row => row.Key.HourStart).ToArray()));
            upsert.Parameters.Add(new NpgsqlParameter<long[]>("counts", rows.Select(row => row.Value).ToArray()));
            await upsert.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return rows.Select(row => row.Key.ClientId).Distinct().ToList();
    }

    /// <summary>
    /// A row the database refuses for its content (invalid data class 22, constraint class 23 — such as a day
    /// with no partition): retrying cannot help, isolating it can. Everything else is treated as transient.
    /// </summary>
    public static bool IsRefusal(Exception exception) =>
        exception is PostgresException { IsTransient: false } postgres
        && (postgres.SqlState.StartsWith("22", StringComparison.Ordinal) || postgres.SqlState.StartsWith("23", StringComparison.Ordinal));
}
