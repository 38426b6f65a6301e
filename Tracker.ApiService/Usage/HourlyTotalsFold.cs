using System.Data;
using System.Diagnostics;
using Microsoft.Extensions.Options;
using Npgsql;
using Tracker.ApiService.Storage;

namespace Tracker.ApiService.Usage;

/// <summary>
/// Writes the per-client hourly totals (<c>usage_hourly</c>) of the hours ingest has marked (<c>usage_hourly_marks</c>)
/// as the sums of their detailed cells, and removes the marks, in transactions of as many marks as keep each one short
/// (<see cref="FoldTransactionSize"/>). Ingest marks an hour (<c>INSERT … ON CONFLICT DO NOTHING</c>) in the
/// transaction that adds its cells, instead of adding to its total there: with many clients an upsert of the total per
/// client-hour and batch cost PostgreSQL as much again as the cells themselves, a mark already there only a lookup.
/// Reads (the view <c>usage_hourly_totals</c>) take a marked hour's total from its cells, so no answer waits for this
/// job: it keeps the reads of hours no longer written to cheap. A past hour's mark is folded at the next run. A
/// mark of the current UTC hour (or of a later one, which a clock ahead of PostgreSQL's stamped) is folded once it is
/// <see cref="UsageOptions.CurrentHourFoldSeconds"/> old (five minutes), not at every run: a busy client's next batch
/// marks its hour again within moments, so summing its cells under the lock buys it nothing, and every run would cost
/// ingest that much. Not only once the hour has ended either: every read of a window with a client that went quiet
/// would then sum that hour's cells, for up to an hour (after 10,000 keys of 1,000 clients, about half of what an
/// uncached <c>top</c> cost PostgreSQL).
/// </summary>
/// <remarks>
/// <para>
/// Each transaction first takes the marks table in <c>EXCLUSIVE</c> mode, which waits for every ingest transaction
/// that has inserted or found a mark and not yet ended (each holds the table in <c>ROW EXCLUSIVE</c> mode from its
/// mark statement, the last before its COMMIT), and keeps new ones out until it commits. Its later statements then see
/// every cell whose transaction marked, or found marked, an hour it removes. Without the lock, a transaction whose
/// <c>DO NOTHING</c> found a mark (which takes no row lock) could commit cells after the fold had summed the hour and
/// removed that mark: the hour would then read its stale total. A transaction that adds cells after the fold's
/// commit marks the hour again. So in any snapshot an hour is either marked or its total is its cells' sum.
/// </para>
/// <para>
/// Ingest waits only while a fold transaction runs (<see cref="FoldTransactionSize"/> sizes each by the last one's
/// cost), or for <see cref="LockTimeout"/> at most while the fold waits for the lock (behind an ingest transaction
/// whose outcome is unknown, or autovacuum); the fold then gives up until the next run. A run folds at most
/// <see cref="TransactionsPerRun"/> transactions' worth, leaving a backlog to the runs after it. Several instances may
/// run it at once: the lock serialises them.
/// </para>
/// </remarks>
public sealed partial class HourlyTotalsFold(
    NpgsqlDataSource dataSource, IOptions<UsageOptions> options, TimeProvider time, ILogger<HourlyTotalsFold> logger)
    : PeriodicDatabaseJob(options.Value.HourlyTotalsFoldInterval, time)
{
    /// <summary>How long a fold waits for the lock, ingest queued behind it, before it leaves the marks for the next run.</summary>
    public static readonly TimeSpan LockTimeout = TimeSpan.FromMilliseconds(100);

    // Runs in a row that did not get the lock before it is logged as a warning.
    private const int LockNotTakenWarningRuns = 12;

    private readonly TimeSpan _currentAfter = TimeSpan.FromSeconds(options.Value.CurrentHourFoldSeconds);

    private int _lockNotTaken;

    // Transactions per run, at most: marks that ingest adds faster than this folds wait for the next run, rather than
    // keep the run (and ingest, at each of its transactions) going.
    private const int TransactionsPerRun = 10;

    // The marks a fold takes, by the database's clock: those of hours that have ended, and those of the current hour
    // (or a later one) made at least @current_after ago (see the summary for why not every one).
    private const string FoldableMarks = """
        SELECT client_id, hour_start FROM usage_hourly_marks
        WHERE hour_start < date_trunc('hour', statement_timestamp(), 'UTC')
           OR marked_at <= statement_timestamp() - @current_after
        """;

    // Read without the lock: taking it when there is nothing to fold would still hold ingest up, every run, for as
    // long as the commits in flight take (tens of milliseconds under a flood of large batches).
    private const string AnyFoldableMark = $"SELECT EXISTS ({FoldableMarks})";

    private static readonly string Lock = $"""
        SELECT set_config('lock_timeout', '{(int)LockTimeout.TotalMilliseconds}ms', true);
        LOCK TABLE usage_hourly_marks IN EXCLUSIVE MODE
        """;

    // The hours' totals replace what usage_hourly held: the cells are every log of the hour, so their sum is its total.
    // An hour without cells (its retention has passed) keeps its row, which retention removes too.
    private static readonly string Fold = $"""
        WITH folded AS (
            DELETE FROM usage_hourly_marks
            WHERE (client_id, hour_start) IN ({FoldableMarks} ORDER BY client_id, hour_start LIMIT @marks)
            RETURNING client_id, hour_start),
        totals AS (
            INSERT INTO usage_hourly (client_id, hour_start, request_count)
            SELECT detail.client_id, detail.hour_start, sum(detail.request_count)::bigint
            FROM folded
            JOIN usage_hourly_details AS detail ON detail.client_id = folded.client_id AND detail.hour_start = folded.hour_start
            GROUP BY 1, 2
            ORDER BY 1, 2
            ON CONFLICT (client_id, hour_start) DO UPDATE SET request_count = excluded.request_count)
        SELECT count(*)::int FROM folded
        """;

    /// <summary>
    /// Folds the marked hours that have ended, and those of the current hour marked long enough ago, up to
    /// <see cref="TransactionsPerRun"/> transactions' worth; returns how many.
    /// </summary>
    public async Task<int> RunOnceAsync(CancellationToken cancellationToken)
    {
        // Ingest waits for each transaction, so a backlog of marks (at an hour's end, or after an outage of the job) is
        // folded in short steps, not in one long wait.
        var size = new FoldTransactionSize();
        var total = 0;
        for (var transactions = 0; transactions < TransactionsPerRun; transactions++)
        {
            var marks = size.Marks;
            var (folded, took) = await FoldAsync(marks, cancellationToken);
            size.Observe(folded, took);
            total += folded;
            if (folded < marks)
            {
                break;
            }
        }

        return total;
    }

    protected override async Task RunScheduledAsync(CancellationToken cancellationToken)
    {
        try
        {
            await RunOnceAsync(cancellationToken);
        }
        catch (PostgresException exception) when (exception.SqlState == PostgresErrorCodes.LockNotAvailable)
        {
            // A long ingest transaction held the marks: they are folded next time, and read from the cells until then.
            // Answers stay exact however long that lasts, but reads grow slower as marks pile up, so a lock that is
            // never free (commits slower than the timeout, every time) is worth a warning after a while.
            if (++_lockNotTaken % LockNotTakenWarningRuns == 0)
            {
                LogLockNotTakenRepeatedly(_lockNotTaken);
            }
            else
            {
                LogLockNotTaken();
            }

            return;
        }

        _lockNotTaken = 0;
    }

    // Until an hour is folded, reads take its total from its cells: slower, never wrong.
    protected override void OnRunFailed(Exception exception) => LogFoldFailed(exception);

    // Folds up to the given number of marks in one transaction: how many it folded, and how long its fold statement took.
    private async Task<(int Folded, TimeSpan Took)> FoldAsync(int marks, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using (var any = new NpgsqlCommand(AnyFoldableMark, connection))
        {
            any.Parameters.Add(new NpgsqlParameter<TimeSpan>("current_after", _currentAfter));
            if (await any.ExecuteScalarAsync(cancellationToken) is not true)
            {
                return (0, TimeSpan.Zero);
            }
        }

        // Read committed: the fold's statement must see what committed while it waited for the lock.
        await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken);
        await using (var lockMarks = new NpgsqlCommand(Lock, connection, transaction))
        {
            await lockMarks.ExecuteNonQueryAsync(cancellationToken);
        }

        await using var fold = new NpgsqlCommand(Fold, connection, transaction);
        fold.Parameters.Add(new NpgsqlParameter<int>("marks", marks));
        fold.Parameters.Add(new NpgsqlParameter<TimeSpan>("current_after", _currentAfter));
        var started = Stopwatch.GetTimestamp();
        var folded = (int)(await fold.ExecuteScalarAsync(cancellationToken))!;
        var took = Stopwatch.GetElapsedTime(started);
        await transaction.CommitAsync(cancellationToken);
        return (folded, took);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "The hourly totals' fold did not get the marks' lock in time; it tries again at its next run")]
    private partial void LogLockNotTaken();

    [LoggerMessage(Level = LogLevel.Warning, Message = "The hourly totals' fold has not got the marks' lock in {Runs} runs in a row (commits take longer than its lock timeout); marked hours are read from their cells meanwhile")]
    private partial void LogLockNotTakenRepeatedly(int runs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Folding the marked hours' totals failed; it runs again within seconds")]
    private partial void LogFoldFailed(Exception exception);
}
