using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Options;

namespace Tracker.ApiService.Ingest;

/// <summary>What happened to a request's logs at the door of the queue.</summary>
public enum EnqueueResult
{
    Queued,
    QueueFull,

    /// <summary>The client already holds its share of the queue (<see cref="IngestOptions.ClientQueueSharePercent"/>).</summary>
    ClientShareFull,
    ShuttingDown,
}

/// <summary>
/// The group-commit writer. Requests put their logs in a queue and await their batch's commit; writer loops
/// take everything queued (up to <see cref="IngestOptions.MaxBatchSize"/>, at most
/// <see cref="IngestOptions.MaxClientBytesPerBatch"/> per client in turn: see <see cref="FairBacklog"/>) and commit it
/// in one transaction, so requests that arrive together share one write and
/// batches grow with load by themselves. The queue is bounded in logs and bytes, and per client (<see cref="QueueBudget"/>).
/// The writer owns a batch's whole life, and is the only place a request's outcome is decided:
/// <list type="bullet">
/// <item>Queue full: refused at once (503), never waited on.</item>
/// <item>Database unreachable or slow: the batch is retried with backoff, and a commit is cancelled when its
/// youngest request's deadline passes; a request still unwritten at its deadline is answered 503, and nothing of it
/// was written.</item>
/// <item>A row the database refuses: that request alone is left out (422), the others commit in the same
/// transaction.</item>
/// <item>A fault in Tracker's own code met while writing (not a database error): the batch is halved until the
/// request that meets it stands alone and gets 500; the others commit.</item>
/// <item>The connection dies during COMMIT: the batch is handed to a background check that asks PostgreSQL what
/// became of the transaction, waiting while it is still in progress, so a batch is never written twice; the
/// writer meanwhile goes on with the queue. If the answer does not come by a request's deadline, the request hears
/// that the outcome is unknown.</item>
/// <item>Shutdown: new requests are refused, everything queued is committed, then the writer stops.</item>
/// </list>
/// </summary>
public sealed partial class LogBatchWriter : BackgroundService
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan OutcomeCheckTimeout = TimeSpan.FromSeconds(1);

    private readonly FairBacklog _queue = new();
    private readonly SemaphoreSlim _smallCommits;

    private readonly IngestOptions _options;
    private readonly ILogBatchCommitter _committer;
    private readonly IngestMetrics _metrics;
    private readonly IUsageChangeObserver _usage;
    private readonly TimeProvider _time;
    private readonly ILogger<LogBatchWriter> _logger;
    private readonly ConcurrentDictionary<Task, bool> _uncertain = new();
    private readonly QueueBudget _budget;
    private int _failingWriters;
    private bool _accepting = true;
    private int _enqueuing;

    public LogBatchWriter(
        IOptions<IngestOptions> options,
        ILogBatchCommitter committer,
        IngestMetrics metrics,
        IUsageChangeObserver usage,
        TimeProvider time,
        ILogger<LogBatchWriter> logger)
    {
        _options = options.Value;
        _committer = committer;
        _metrics = metrics;
        _usage = usage;
        _time = time;
        _logger = logger;
        _smallCommits = new SemaphoreSlim(_options.Writers);
        _budget = new QueueBudget(_options.QueueCapacity, _options.QueueCapacityBytes, _options.ClientQueueSharePercent / 100.0);
        metrics.ObserveQueueDepth(() => QueuedLogs);
    }

    /// <summary>Logs not yet taken by a writer loop: queued, or reserved by a request that is about to queue them.</summary>
    public long QueuedLogs => _budget.Logs;

    /// <summary>The estimated bytes of <see cref="QueuedLogs"/>.</summary>
    public long QueuedBytes => _budget.Bytes;

    /// <summary>
    /// Whether any request of <paramref name="clientId"/> would be refused now (anything but
    /// <see cref="EnqueueResult.Queued"/>), so that a large body need not be read to be refused.
    /// </summary>
    public EnqueueResult Peek(Guid clientId) =>
        Volatile.Read(ref _accepting) ? _budget.Peek(clientId) : EnqueueResult.ShuttingDown;

    /// <summary>Queues a request's logs; on <see cref="EnqueueResult.Queued"/>, await <see cref="PendingLogs.Outcome"/>.</summary>
    public EnqueueResult TryEnqueue(LogRecord[] logs, out PendingLogs? pending)
    {
        pending = null;
        var reserved = TryReserve(logs, out var reservation);
        return reserved == EnqueueResult.Queued ? reservation!.Enqueue(logs, out pending) : reserved;
    }

    /// <summary>
    /// Takes the queue's room for a request's logs without queueing them yet (on <see cref="EnqueueResult.Queued"/>),
    /// so that what cannot be undone, such as charging the request's rate limit, is done only once the queue is sure
    /// to take them.
    /// </summary>
    public EnqueueResult TryReserve(LogRecord[] logs, out QueueReservation? reservation) =>
        // Every log of a request is its one client's: requests are authenticated with one API key.
        TryReserve(logs[0].ClientId, logs.Length, QueueBudget.EstimateBytes(logs), out reservation);

    /// <summary>
    /// Takes room for at most <paramref name="logs"/> logs of <paramref name="clientId"/> of at most
    /// <paramref name="bytes"/> estimated bytes (<see cref="QueueBudget.EstimateBytes(LogRecord)"/>), for logs not
    /// yet parsed: what they do not use is given back when they are queued.
    /// </summary>
    public EnqueueResult TryReserve(Guid clientId, int logs, long bytes, out QueueReservation? reservation)
    {
        reservation = null;
        if (!Volatile.Read(ref _accepting))
        {
            return EnqueueResult.ShuttingDown;
        }

        var admitted = _budget.TryReserve(clientId, logs, bytes);
        if (admitted == EnqueueResult.Queued)
        {
            reservation = new QueueReservation(this, clientId, logs, bytes);
        }

        return admitted;
    }

    /// <summary>Queues reserved logs; anything but <see cref="EnqueueResult.Queued"/> leaves the room reserved.</summary>
    internal EnqueueResult EnqueueReserved(LogRecord[] logs, long bytes, out PendingLogs? pending)
    {
        pending = null;
        Interlocked.Increment(ref _enqueuing);
        try
        {
            if (!Volatile.Read(ref _accepting))
            {
                return EnqueueResult.ShuttingDown;
            }

            var deadline = _time.GetTimestamp() + (long)(_options.CommitTimeoutSeconds * (double)_time.TimestampFrequency);
            var queued = new PendingLogs(logs, deadline, bytes);
            // False only when shutdown completed the queue between the check above and this write.
            if (!_queue.TryWrite(logs[0].ClientId, queued))
            {
                return EnqueueResult.ShuttingDown;
            }

            pending = queued;
            return EnqueueResult.Queued;
        }
        finally
        {
            Interlocked.Decrement(ref _enqueuing);
        }
    }

    /// <summary>Gives back room reserved and not queued.</summary>
    internal void ReleaseReserved(Guid clientId, long logs, long bytes) => _budget.Release(clientId, logs, bytes);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The loops deliberately ignore stoppingToken: on shutdown they drain the queue, then end.
        // At most Writers small batches commit at once; the loop beyond them commits beside a big one.
        await Task.WhenAll(Enumerable.Range(0, _options.Writers + 1).Select(_ => Task.Run(RunWriterAsync, CancellationToken.None)));
        // Batches whose outcome is being checked end by their requests' deadlines at the latest; a check may start
        // another (a batch found aborted and written again), so wait until none is left.
        while (!_uncertain.IsEmpty)
        {
            await Task.WhenAll(_uncertain.Keys);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // No request may be queued after the queue is completed: refuse new ones, then wait out those already past
        // the check (a few instructions each) before completing it.
        Volatile.Write(ref _accepting, false);
        Interlocked.MemoryBarrier();
        var spin = new SpinWait();
        while (Volatile.Read(ref _enqueuing) > 0)
        {
            spin.SpinOnce();
        }

        _queue.Complete();
        LogDraining(QueuedLogs);
        await base.StopAsync(cancellationToken);
    }

    private async Task RunWriterAsync()
    {
        var batch = new FairBacklog.Batch();
        // A batch holding requests before it was filled got them at shutdown, from a client it held (see Release).
        while (batch.Requests.Count > 0 || await _queue.WaitToReadAsync())
        {
            // A small batch holds a slot until its commit ends; a big one gives it back at once (see IngestOptions.Writers).
            await _smallCommits.WaitAsync();
            var holdsSlot = true;
            try
            {
                _queue.Fill(batch, _options.MaxBatchSize, _options.MaxClientBytesPerBatch);
                if (batch.Logs < _options.MaxBatchSize && _options.LingerMilliseconds > 0)
                {
                    await Task.Delay(_options.LingerMilliseconds);
                    _queue.Fill(batch, _options.MaxBatchSize, _options.MaxClientBytesPerBatch);
                }

                if (batch.IsBig)
                {
                    _smallCommits.Release();
                    holdsSlot = false;
                }

                foreach (var taken in batch.Requests)
                {
                    _budget.Release(taken.Logs[0].ClientId, taken.Logs.Length, taken.Bytes);
                }

                await WriteAsync(batch.Requests);
            }
            finally
            {
                // The batch's clients first: a loop waiting for the slot then finds their requests queued meanwhile.
                _queue.Release(batch);
                if (holdsSlot)
                {
                    _smallCommits.Release();
                }
            }
        }
    }

    /// <summary>Writes <paramref name="batch"/> until every request of it is settled or handed to an outcome check.</summary>
    private async Task WriteAsync(List<PendingLogs> batch)
    {
        var failures = 0;
        while (true)
        {
            Expire(batch, WriteOutcome.TimedOut, "timeout");
            if (batch.Count == 0)
            {
                break;
            }

            try
            {
                await CommitAsync(batch);
                break;
            }
            catch (AmbiguousCommitException uncertain)
            {
                LogAmbiguousCommit(uncertain.Transaction.TransactionId);
                // Should it turn out committed, this is what it did; if not, the retry counts again.
                RecordDuplicates(batch, uncertain.Result);
                var requests = batch.ToList();
                var refused = uncertain.Result.Refused.Select(index => batch[index]).ToList();
                var check = Task.Run(() => ResolveAsync(requests, refused, uncertain.Transaction), CancellationToken.None);
                _uncertain.TryAdd(check, true);
                _ = check.ContinueWith(done => _uncertain.TryRemove(done, out _), TaskScheduler.Default);
                break;
            }
            catch (CommitFaultException fault)
            {
                var exception = fault.InnerException!;
                // Not an outage: some request's logs met a fault in Tracker's own code, and the transaction was rolled
                // back. The same batch would fail again on every retry until every request's deadline, so the
                // batch is halved until the request that meets the fault stands alone; the others commit.
                if (batch.Count == 1)
                {
                    LogCommitFault(exception, batch[0].Logs.Length);
                    Settle(batch, WriteOutcome.Failed);
                    _metrics.Rejected(batch[0].Logs.Length, "fault");
                }
                else
                {
                    await WriteAsync(batch.GetRange(0, batch.Count / 2));
                    await WriteAsync(batch.GetRange(batch.Count / 2, batch.Count - batch.Count / 2));
                }

                break;
            }
            catch (Exception exception)
            {
                if (failures++ == 0 && Interlocked.Increment(ref _failingWriters) == 1)
                {
                    // Logged once per outage, not once per retry.
                    LogCommitFailing(exception);
                }

                await Task.Delay(Backoff(failures));
            }
        }

        if (failures > 0 && Interlocked.Decrement(ref _failingWriters) == 0)
        {
            LogRecovered();
        }
    }

    private async Task CommitAsync(List<PendingLogs> batch)
    {
        using var activity = IngestMetrics.ActivitySource.StartActivity("ingest batch");
        var logs = batch.Sum(pending => pending.Logs.Length);
        activity?.SetTag("tracker.ingest.requests", batch.Count);
        activity?.SetTag("tracker.ingest.logs", logs);
        var started = _time.GetTimestamp();
        // A commit still running when the youngest request's deadline passes is cancelled: then nobody in the batch
        // could still be answered 201, and nobody waits on a database that does not answer. Not the oldest's
        // deadline: under overload that would cancel, again and again, work the younger requests could still use.
        var youngest = batch.Max(pending => pending.DeadlineTimestamp);
        using var deadline = new CancellationTokenSource(Max(_time.GetElapsedTime(started, youngest), TimeSpan.FromMilliseconds(1)), _time);
        try
        {
            CommitResult result;
            try
            {
                result = await _committer.CommitAsync([.. batch.Select(pending => pending.Logs)], deadline.Token);
            }
            catch (Exception exception) when (LogBatchCommitter.IsFault(exception))
            {
                // Only the committer's own faults: it rolled back. A throw past its return would come after a commit,
                // and halving would write committed logs again.
                throw new CommitFaultException(exception);
            }

            RecordDuplicates(batch, result);
            var committed = batch;
            if (result.Refused.Count > 0)
            {
                var left = result.Refused.Select(index => batch[index]).ToList();
                committed = [.. batch.Where(pending => !left.Contains(pending))];
                foreach (var request in left)
                {
                    Settle([request], WriteOutcome.Refused);
                    _metrics.Rejected(request.Logs.Length, "refused");
                    LogRefused(request.Logs.Length);
                }
            }

            _metrics.Committed(committed.Sum(pending => pending.Logs.Length), _time.GetElapsedTime(started));
            Settle(committed, WriteOutcome.Committed);
        }
        catch (Exception exception)
        {
            activity?.AddException(exception);
            activity?.SetStatus(ActivityStatusCode.Error);
            throw;
        }
    }

    /// <summary>
    /// Learns whether the transaction holding <paramref name="requests"/> committed. "Still in progress" is waited
    /// out (the old backend may still be committing), never taken for "not committed", which would write the batch
    /// twice. Aborted: written again. Runs beside the writer loops, so no other request waits for it.
    /// </summary>
    private async Task ResolveAsync(List<PendingLogs> requests, List<PendingLogs> refused, UncertainTransaction transaction)
    {
        try
        {
            await ResolveOrThrowAsync(requests, refused, transaction);
        }
        catch (Exception exception)
        {
            // Nothing may leave a request unanswered.
            LogResolveFailed(exception, transaction.TransactionId);
            Expire(requests, WriteOutcome.Unknown, "unknown", everything: true);
        }
    }

    private async Task ResolveOrThrowAsync(List<PendingLogs> requests, List<PendingLogs> refused, UncertainTransaction transaction)
    {
        // Requests answered "unknown" meanwhile leave the list, but if it committed, their logs count too.
        var all = requests.ToList();
        var failures = 0;
        var transactionId = transaction.TransactionId;
        while (true)
        {
            Expire(requests, WriteOutcome.Unknown, "unknown");
            TransactionOutcome outcome;
            try
            {
                // Each check is short, so that a hung connection cannot hold a request past its deadline.
                using var timeout = new CancellationTokenSource(OutcomeCheckTimeout, _time);
                outcome = await _committer.GetOutcomeAsync(transaction, timeout.Token);
            }
            catch (Exception)
            {
                // PostgreSQL unreachable, or the check timed out: ask again, after a backoff.
                outcome = TransactionOutcome.InProgress;
                failures++;
            }

            switch (outcome)
            {
                case TransactionOutcome.Committed:
                    LogAmbiguousCommitResolved(transactionId, "committed");
                    // Requests the transaction left out (refused under a savepoint) were not stored by it.
                    Settle(refused, WriteOutcome.Refused);
                    Settle([.. all.Where(pending => !refused.Contains(pending))], WriteOutcome.Committed);
                    return;
                case TransactionOutcome.Aborted:
                    LogAmbiguousCommitResolved(transactionId, "not committed; writing it again");
                    await WriteAsync(requests);
                    return;
                case TransactionOutcome.Forgotten:
                    LogAmbiguousCommitResolved(transactionId, "unknown to PostgreSQL");
                    Expire(requests, WriteOutcome.Unknown, "unknown", everything: true);
                    return;
            }

            if (requests.Count == 0 && !Volatile.Read(ref _accepting))
            {
                // Everyone has been answered and the process is stopping: nobody is left to tell.
                return;
            }

            await Task.Delay(failures > 0 ? Backoff(failures) : TimeSpan.FromMilliseconds(50));
        }
    }

    private void Expire(List<PendingLogs> requests, WriteOutcome outcome, string reason, bool everything = false)
    {
        var overdue = everything ? [.. requests] : BatchingPolicy.TakeOverdue(requests, _time.GetTimestamp());
        if (everything)
        {
            requests.Clear();
        }

        if (overdue.Count > 0)
        {
            Settle(overdue, outcome);
            _metrics.Rejected(overdue.Sum(pending => pending.Logs.Length), reason);
        }
    }

    /// <summary>The one place a request's outcome is decided.</summary>
    private void Settle(IReadOnlyList<PendingLogs> requests, WriteOutcome outcome)
    {
        if (outcome == WriteOutcome.Committed)
        {
            // Caches hear of the change before any client hears 201, so a fresh read after a 201 sees it.
            NotifyUsageChanged([.. requests.SelectMany(pending => pending.Logs).Select(log => log.ClientId).Distinct()]);
        }

        PendingLogs.SettleAll(requests, outcome);
    }

    private static void RecordDuplicates(List<PendingLogs> batch, CommitResult result)
    {
        for (var index = 0; index < batch.Count; index++)
        {
            batch[index].Duplicates = result.Duplicates[index];
        }
    }

    private static TimeSpan Max(TimeSpan left, TimeSpan right) => left > right ? left : right;

    private static TimeSpan Backoff(int failures) =>
        TimeSpan.FromMilliseconds(Math.Min(MaxBackoff.TotalMilliseconds, 25 * Math.Pow(2, Math.Min(failures, 10)))
            + Random.Shared.Next(0, 25));

    // Past the commit, nothing may throw: an exception here would make the writer retry a committed batch.
    private void NotifyUsageChanged(IReadOnlyCollection<Guid> clientIds)
    {
        try
        {
            _usage.UsageChanged(clientIds);
        }
        catch (Exception exception)
        {
            LogObserverFailed(exception);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A usage observer failed; the logs are committed, usage caches may lag until they expire")]
    private partial void LogObserverFailed(Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Committing activity logs fails; retrying with backoff, requests past their deadline get 503")]
    private partial void LogCommitFailing(Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The connection failed while committing ingest transaction {TransactionId}; asking PostgreSQL whether it was committed")]
    private partial void LogAmbiguousCommit(ulong transactionId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Ingest transaction {TransactionId}, whose commit outcome was unknown: {Outcome}")]
    private partial void LogAmbiguousCommitResolved(ulong transactionId, string outcome);

    [LoggerMessage(Level = LogLevel.Error, Message = "Checking the outcome of ingest transaction {TransactionId} failed unexpectedly; its requests are told the outcome is unknown")]
    private partial void LogResolveFailed(Exception exception, ulong transactionId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Writing a request's {Count} log(s) met a fault in Tracker's own code, not the database's; that request gets 500, the others of its batch are written without it")]
    private partial void LogCommitFault(Exception exception, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Committing activity logs works again")]
    private partial void LogRecovered();

    [LoggerMessage(Level = LogLevel.Warning, Message = "The database refused a request's {Count} log(s); the other requests of the batch were committed")]
    private partial void LogRefused(int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stopping ingest: refusing new logs, committing the {Count} queued")]
    private partial void LogDraining(long count);
}
