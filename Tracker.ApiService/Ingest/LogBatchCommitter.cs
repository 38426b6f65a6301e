using System.Globalization;
using Npgsql;
using NpgsqlTypes;

namespace Tracker.ApiService.Ingest;

/// <summary>Writes batches of logs in PostgreSQL; see <see cref="LogBatchCommitter"/>.</summary>
/// <remarks>It sees logs, never the requests waiting for them: the writer alone decides what a request hears.</remarks>
public interface ILogBatchCommitter
{
    /// <summary>
    /// Commits the logs of every request of <paramref name="requests"/> in one transaction, leaving out any request
    /// a row of which the database refuses, and any log whose id is already stored. Throws
    /// <see cref="AmbiguousCommitException"/> when the connection failed while COMMIT was in flight; any other
    /// exception means nothing was committed.
    /// </summary>
    Task<CommitResult> CommitAsync(IReadOnlyList<LogRecord[]> requests, CancellationToken cancellationToken);

    /// <summary>
    /// What became of a transaction whose COMMIT had an unknown outcome. If the backend that ran it still holds it
    /// (idle in it, its client gone), the backend is ended first: its locks on the rollup rows would otherwise hold
    /// up every later batch until PostgreSQL noticed by itself.
    /// </summary>
    Task<TransactionOutcome> GetOutcomeAsync(UncertainTransaction transaction, CancellationToken cancellationToken);
}

/// <summary>PostgreSQL's answer about a recent transaction (<c>pg_xact_status</c>).</summary>
public enum TransactionOutcome
{
    /// <summary>Still running, or still committing (a slow disk, a synchronous standby): ask again.</summary>
    InProgress,
    Committed,
    Aborted,

    /// <summary>Too old for PostgreSQL to remember; nothing can tell any more.</summary>
    Forgotten,
}

/// <summary>What a commit did with each request of a batch.</summary>
/// <param name="Refused">Indexes of the requests the database refused (ascending); nothing of them was stored.</param>
/// <param name="Duplicates">For each request, how many of its logs were not stored because a log with the same id
/// and timestamp was already stored (earlier, or earlier in the same batch).</param>
public sealed record CommitResult(IReadOnlyList<int> Refused, int[] Duplicates);

/// <summary>A transaction whose COMMIT had an unknown outcome: its id, and the backend process that ran it.</summary>
public readonly record struct UncertainTransaction(ulong TransactionId, int ProcessId);

/// <summary>The connection failed while COMMIT was in flight: the transaction may or may not be committed.</summary>
public sealed class AmbiguousCommitException(UncertainTransaction transaction, CommitResult result, Exception innerException)
    : Exception("The outcome of committing an ingest batch is unknown.", innerException)
{
    /// <summary>Which transaction to ask PostgreSQL about.</summary>
    public UncertainTransaction Transaction { get; } = transaction;

    /// <summary>What the transaction holds, should it turn out committed.</summary>
    public CommitResult Result { get; } = result;
}

/// <summary>The committer met a fault in Tracker's own code (<see cref="LogBatchCommitter.IsFault"/>) and rolled back.</summary>
internal sealed class CommitFaultException(Exception fault) : Exception("Writing the batch met a fault in Tracker's own code.", fault);

/// <summary>
/// Writes a batch in one transaction: the logs with binary COPY, then one round trip that adds them to the detailed
/// hourly rollups (<see cref="DetailedRollup"/>), marks the client-hours whose totals the fold must write again
/// (<c>usage_hourly_marks</c>; see <see cref="Usage.HourlyTotalsFold"/>) and reads the transaction's id. Either all
/// of it is committed or none is.
/// </summary>
/// <remarks>
/// Commits go through the writer's own few connections (<see cref="DataSourceKey"/>), so that they keep meeting warm
/// backends; an outcome check goes through the shared pool, so that it can always end a backend still holding a lost
/// commit's locks, even when every one of the writer's connections is waiting on those locks.
/// </remarks>
public sealed class LogBatchCommitter(
    [FromKeyedServices(LogBatchCommitter.DataSourceKey)] NpgsqlDataSource dataSource, NpgsqlDataSource sharedDataSource,
    AdmittedEndpoints admitted, TimeProvider time)
    : ILogBatchCommitter
{
    /// <summary>The key of the writer's own data source.</summary>
    public const string DataSourceKey = "log-writer";

    private const string CopyCommand =
        "COPY logs (client_id, api_key_id, occurred_at, ip_address, method, endpoint, status_code, duration_ms) FROM STDIN (FORMAT BINARY)";

    // Marks the client-hours the batch added cells to, in key order as every rollup row is written. Last in the
    // transaction: from this statement until COMMIT the transaction holds the marks table in ROW EXCLUSIVE mode, which
    // the fold's EXCLUSIVE lock waits for (HourlyTotalsFold), so the fold waits no longer than a commit's round trip.
    private const string MarkHours = """
        INSERT INTO usage_hourly_marks (client_id, hour_start)
        SELECT * FROM unnest(@client_ids, @hour_starts) ORDER BY 1, 2
        ON CONFLICT DO NOTHING
        """;

    // A log with an id goes through INSERT instead of COPY, which cannot skip a row that is already there. Several
    // logs of one statement with the same key are fine: DO NOTHING skips all but the first. A concurrent transaction
    // inserting the same key makes this one wait for its outcome, so exactly one of them stores it.
    private const string InsertWithIds = """
        INSERT INTO logs (client_id, api_key_id, occurred_at, ip_address, method, endpoint, log_id, status_code, duration_ms)
        SELECT * FROM unnest(@client_ids, @api_key_ids, @occurred_ats, @ip_addresses, @methods, @endpoints, @log_ids, @status_codes, @durations)
        ON CONFLICT (client_id, log_id, occurred_at) WHERE log_id IS NOT NULL DO NOTHING
        RETURNING client_id, log_id, occurred_at
        """;

    private const string IsolationSavepoint = "part";

    public async Task<CommitResult> CommitAsync(IReadOnlyList<LogRecord[]> requests, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        try
        {
            return await WriteAsync(connection, requests, isolateRefusals: false, admitted, time, cancellationToken);
        }
        catch (PostgresException exception) when (IsRefusal(exception))
        {
            // Rare (validation refuses what PostgreSQL would, so this is a day with no partition, say): write again,
            // each part under a savepoint, so the refused request is found without a transaction per part.
            return await WriteAsync(connection, requests, isolateRefusals: true, admitted, time, cancellationToken);
        }
    }

    public async Task<TransactionOutcome> GetOutcomeAsync(UncertainTransaction transaction, CancellationToken cancellationToken)
    {
        await using var statements = sharedDataSource.CreateBatch();
        // Only the backend still inside that very transaction: a process id alone may have been reused.
        var end = new NpgsqlBatchCommand(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = @pid AND backend_xid::text = @xid32");
        end.Parameters.Add(new NpgsqlParameter<int>("pid", transaction.ProcessId));
        end.Parameters.Add(new NpgsqlParameter<string>("xid32", (transaction.TransactionId & uint.MaxValue).ToString(CultureInfo.InvariantCulture)));
        var status = new NpgsqlBatchCommand("SELECT pg_xact_status(@id::text::xid8)");
        status.Parameters.Add(new NpgsqlParameter<string>("id", transaction.TransactionId.ToString(CultureInfo.InvariantCulture)));
        statements.BatchCommands.Add(end);
        statements.BatchCommands.Add(status);
        try
        {
            await using var reader = await statements.ExecuteReaderAsync(cancellationToken);
            await reader.NextResultAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            return (reader.IsDBNull(0) ? null : reader.GetString(0)) switch
            {
                "committed" => TransactionOutcome.Committed,
                "aborted" => TransactionOutcome.Aborted,
                "in progress" => TransactionOutcome.InProgress,
                _ => TransactionOutcome.Forgotten,
            };
        }
        catch (PostgresException exception) when (exception.SqlState == PostgresErrorCodes.InvalidParameterValue)
        {
            // "Transaction ID is in the future": this server never saw it (a failover to a standby that had not
            // received it). Nothing can tell any more.
            return TransactionOutcome.Forgotten;
        }
    }

    /// <summary>
    /// A row the database refuses for its content (invalid data class 22, constraint class 23 — such as a day
    /// with no partition): retrying cannot help, isolating it can. Everything else is treated as transient.
    /// </summary>
    public static bool IsRefusal(Exception exception) =>
        exception is PostgresException { IsTransient: false } postgres
        && (postgres.SqlState.StartsWith("22", StringComparison.Ordinal) || postgres.SqlState.StartsWith("23", StringComparison.Ordinal));

    /// <summary>
    /// An exception that only a fault in Tracker's own code throws, met by some request's logs (the rollup sketch once
    /// threw <see cref="ArgumentOutOfRangeException"/> for a duration of -0): retrying cannot help, and unlike an
    /// outage it is not everybody's. A list of such types, not "anything but a database error": a failing database
    /// or connection can surface through other types too (<see cref="InvalidOperationException"/> from a broken
    /// connection, <see cref="OutOfMemoryException"/>), and those must stay an outage, retried with backoff.
    /// </summary>
    public static bool IsFault(Exception exception) =>
        exception is ArgumentException or ArithmeticException or FormatException or InvalidCastException
            or IndexOutOfRangeException or NullReferenceException or KeyNotFoundException;

    private static async Task<CommitResult> WriteAsync(
        NpgsqlConnection connection, IReadOnlyList<LogRecord[]> requests, bool isolateRefusals, AdmittedEndpoints admitted,
        TimeProvider time, CancellationToken cancellationToken)
    {
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        List<int> refused = [];
        var stored = new HashSet<LogKey>();
        if (isolateRefusals)
        {
            refused = await BatchingPolicy.IsolateRefusalsAsync(requests.Count, async (start, count) =>
            {
                await transaction.SaveAsync(IsolationSavepoint, cancellationToken);
                try
                {
                    var part = new HashSet<LogKey>();
                    await WriteLogsAsync(connection, requests, start, count, part, cancellationToken);
                    await transaction.ReleaseAsync(IsolationSavepoint, cancellationToken);
                    stored.UnionWith(part);
                    return true;
                }
                catch (PostgresException exception) when (IsRefusal(exception))
                {
                    await transaction.RollbackAsync(IsolationSavepoint, cancellationToken);
                    return false;
                }
            });
        }
        else
        {
            await WriteLogsAsync(connection, requests, 0, requests.Count, stored, cancellationToken);
        }

        var (transactionId, duplicates, names) = await RollUpAsync(connection, transaction, requests, refused, stored, admitted, time.GetUtcNow(), cancellationToken);
        var result = new CommitResult(refused, duplicates);
        var uncertain = new UncertainTransaction(transactionId, connection.ProcessID);
        try
        {
            await transaction.CommitAsync(cancellationToken);
        }
        catch (Exception exception) when (exception is not PostgresException)
        {
            // A server error means "not committed"; a broken connection (or a cancelled wait) leaves it unknown.
            throw new AmbiguousCommitException(uncertain, result, exception);
        }

        admitted.Remember(names);
        return result;
    }

    /// <summary>Writes the logs of requests <c>[start, start + count)</c>; adds the keys of the logs with ids
    /// that were stored (not already there) to <paramref name="stored"/>.</summary>
    private static async Task WriteLogsAsync(
        NpgsqlConnection connection, IReadOnlyList<LogRecord[]> requests, int start, int count, HashSet<LogKey> stored,
        CancellationToken cancellationToken)
    {
        var withIds = 0;
        var withoutIds = 0;
        for (var index = start; index < start + count; index++)
        {
            foreach (var log in requests[index])
            {
                _ = log.Id is null ? withoutIds++ : withIds++;
            }
        }

        if (withoutIds > 0)
        {
            await CopyAsync(connection, requests, start, count, cancellationToken);
        }

        if (withIds > 0)
        {
            await InsertWithIdsAsync(connection, requests, start, count, withIds, stored, cancellationToken);
        }
    }

    private static async Task CopyAsync(
        NpgsqlConnection connection, IReadOnlyList<LogRecord[]> requests, int start, int count, CancellationToken cancellationToken)
    {
        await using var importer = await connection.BeginBinaryImportAsync(CopyCommand, cancellationToken);
        for (var index = start; index < start + count; index++)
        {
            foreach (var log in requests[index])
            {
                if (log.Id is not null)
                {
                    continue;
                }

                // Synchronous writes fill Npgsql's buffer and only block when it flushes (every few kB);
                // awaiting each field of a row cost more CPU than the COPY itself.
                importer.StartRow();
                importer.Write(log.ClientId, NpgsqlDbType.Uuid);
                importer.Write(log.ApiKeyId, NpgsqlDbType.Uuid);
                importer.Write(log.OccurredAt.UtcDateTime, NpgsqlDbType.TimestampTz);
                importer.Write(log.IpAddress, NpgsqlDbType.Inet);
                importer.Write(log.Method, NpgsqlDbType.Varchar);
                importer.Write(log.Endpoint, NpgsqlDbType.Varchar);
                if (log.StatusCode is { } status)
                {
                    importer.Write(status, NpgsqlDbType.Smallint);
                }
                else
                {
                    importer.WriteNull();
                }

                if (log.DurationMs is { } duration)
                {
                    importer.Write(duration, NpgsqlDbType.Double);
                }
                else
                {
                    importer.WriteNull();
                }
            }
        }

        await importer.CompleteAsync(cancellationToken);
    }

    private static async Task InsertWithIdsAsync(
        NpgsqlConnection connection, IReadOnlyList<LogRecord[]> requests, int start, int count, int logs, HashSet<LogKey> stored,
        CancellationToken cancellationToken)
    {
        // In key order, as the rollups are: two transactions inserting the same ids then lock them in the same order
        // and cannot deadlock (with more than one writer loop).
        // Copies of one log keep their batch order (the position breaks ties), so the first copy is the stored one.
        var ordered = new (LogRecord Log, int Position)[logs];
        var at = 0;
        for (var index = start; index < start + count; index++)
        {
            foreach (var log in requests[index])
            {
                if (log.Id is not null)
                {
                    ordered[at] = (log, at);
                    at++;
                }
            }
        }

        Array.Sort(ordered, static (left, right) =>
        {
            var byClient = left.Log.ClientId.CompareTo(right.Log.ClientId);
            if (byClient != 0)
            {
                return byClient;
            }

            var byId = string.CompareOrdinal(left.Log.Id, right.Log.Id);
            if (byId != 0)
            {
                return byId;
            }

            var byTime = left.Log.OccurredAt.CompareTo(right.Log.OccurredAt);
            return byTime != 0 ? byTime : left.Position.CompareTo(right.Position);
        });

        var clientIds = new Guid[logs];
        var apiKeyIds = new Guid[logs];
        var occurredAts = new DateTime[logs];
        var ipAddresses = new System.Net.IPAddress[logs];
        var methods = new string[logs];
        var endpoints = new string[logs];
        var logIds = new string[logs];
        var statusCodes = new short?[logs];
        var durations = new double?[logs];
        for (var row = 0; row < logs; row++)
        {
            var log = ordered[row].Log;
            clientIds[row] = log.ClientId;
            apiKeyIds[row] = log.ApiKeyId;
            occurredAts[row] = log.OccurredAt.UtcDateTime;
            ipAddresses[row] = log.IpAddress;
            methods[row] = log.Method;
            endpoints[row] = log.Endpoint;
            logIds[row] = log.Id!;
            statusCodes[row] = log.StatusCode;
            durations[row] = log.DurationMs;
        }

        await using var insert = new NpgsqlCommand(InsertWithIds, connection);
        insert.Parameters.Add(new NpgsqlParameter<Guid[]>("client_ids", clientIds));
        insert.Parameters.Add(new NpgsqlParameter<Guid[]>("api_key_ids", apiKeyIds));
        insert.Parameters.Add(new NpgsqlParameter<DateTime[]>("occurred_ats", occurredAts) { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        insert.Parameters.Add(new NpgsqlParameter<System.Net.IPAddress[]>("ip_addresses", ipAddresses) { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Inet });
        insert.Parameters.Add(new NpgsqlParameter<string[]>("methods", methods) { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Varchar });
        insert.Parameters.Add(new NpgsqlParameter<string[]>("endpoints", endpoints) { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Varchar });
        insert.Parameters.Add(new NpgsqlParameter<string[]>("log_ids", logIds) { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Varchar });
        insert.Parameters.Add(new NpgsqlParameter<short?[]>("status_codes", statusCodes) { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Smallint });
        insert.Parameters.Add(new NpgsqlParameter<double?[]>("durations", durations) { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Double });
        await using var reader = await insert.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            stored.Add(new LogKey(reader.GetGuid(0), reader.GetString(1), reader.GetFieldValue<DateTime>(2).Ticks));
        }
    }

    /// <summary>
    /// Adds the stored logs to the detailed hourly rollups, marks their client-hours and returns the transaction's id,
    /// in one round trip; counts, per
    /// request, the logs with ids that were not stored (the first of several copies in a batch is the stored one);
    /// returns the endpoint names the detailed cells were stored under, if the cap was applied.
    /// </summary>
    private static async Task<(ulong TransactionId, int[] Duplicates, List<(Guid, DateTime, string)> Names)> RollUpAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<LogRecord[]> requests, List<int> refused,
        HashSet<LogKey> stored, AdmittedEndpoints admitted, DateTimeOffset utcNow, CancellationToken cancellationToken)
    {
        var duplicates = new int[requests.Count];
        var hours = new HashSet<(Guid ClientId, DateTime HourStart)>();
        var details = new DetailedRollup();
        for (var index = 0; index < requests.Count; index++)
        {
            if (refused.Count > 0 && refused.BinarySearch(index) >= 0)
            {
                continue;
            }

            foreach (var log in requests[index])
            {
                if (log.Id is not null && !stored.Remove(new LogKey(log.ClientId, log.Id, log.OccurredAt.UtcDateTime.Ticks)))
                {
                    duplicates[index]++;
                    continue;
                }

                var utc = log.OccurredAt.UtcDateTime;
                var hour = new DateTime(utc.Year, utc.Month, utc.Day, utc.Hour, 0, 0, DateTimeKind.Utc);
                hours.Add((log.ClientId, hour));
                details.Add(log, hour);
            }
        }

        await using var statements = new NpgsqlBatch(connection, transaction);
        // Asked before COMMIT because afterwards, if the connection dies, it is the only way to learn the outcome.
        statements.BatchCommands.Add(new NpgsqlBatchCommand("SELECT pg_current_xact_id()::text"));
        foreach (var detailed in details.ToCommands(admitted, utcNow))
        {
            statements.BatchCommands.Add(detailed);
        }

        if (hours.Count > 0)
        {
            var mark = new NpgsqlBatchCommand(MarkHours);
            mark.Parameters.Add(new NpgsqlParameter<Guid[]>("client_ids", [.. hours.Select(hour => hour.ClientId)]));
            mark.Parameters.Add(new NpgsqlParameter<DateTime[]>("hour_starts", [.. hours.Select(hour => hour.HourStart)]));
            statements.BatchCommands.Add(mark);
        }

        await using var reader = await statements.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        var transactionId = ulong.Parse(reader.GetString(0), CultureInfo.InvariantCulture);
        var names = new List<(Guid, DateTime, string)>();
        while (await reader.NextResultAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                names.Add((reader.GetGuid(0), reader.GetFieldValue<DateTime>(1), reader.GetString(2)));
            }
        }

        return (transactionId, duplicates, names);
    }

    /// <summary>What makes two logs the same log: its client, its id and its time.</summary>
    private readonly record struct LogKey(Guid ClientId, string Id, long UtcTicks);
}
