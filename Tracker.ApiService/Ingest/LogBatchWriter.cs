using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Options;

namespace Tracker.ApiService.Ingest;

/// <summary>What happened to a request's logs at the door of the queue.</summary>
public enum EnqueueResult
{
    Queued,
    QueueFull,
    ShuttingDown,
}

/// <summary>
/// The group-commit writer. Requests put their logs in a queue and await their batch's commit; writer loops
/// take everything queued (up to <see cref="IngestOptions.MaxBatchSize"/>) and commit it in one transaction,
/// so requests that arrive together share one write and batches grow with load by themselves.
/// <list type="bullet">
/// <item>Queue full: refused at once (503), never waited on.</item>
/// <item>Database unreachable: the batch is retried with backoff; a request still unwritten at its deadline is
/// answered 503, and nothing of it was written.</item>
/// <item>A row the database refuses: the batch is split until that request stands alone; the others commit.</item>
/// <item>Shutdown: new requests are refused, everything queued is committed, then the writer stops.</item>
/// </list>
/// </summary>
public sealed partial class LogBatchWriter : BackgroundService
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(1);

    private readonly Channel<PendingLogs> _queue = Channel.CreateUnbounded<PendingLogs>(
        new UnboundedChannelOptions { SingleReader = false, SingleWriter = false });

    private readonly IngestOptions _options;
    private readonly ILogBatchCommitter _committer;
    private readonly IngestMetrics _metrics;
    private readonly IUsageChangeObserver _usage;
    private readonly TimeProvider _time;
    private readonly ILogger<LogBatchWriter> _logger;
    private long _queuedLogs;
    private int _failingWriters;
    private volatile bool _accepting = true;

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
        metrics.ObserveQueueDepth(() => Interlocked.Read(ref _queuedLogs));
    }

    /// <summary>Queues a request's logs; on <see cref="EnqueueResult.Queued"/>, await <see cref="PendingLogs.Outcome"/>.</summary>
    public EnqueueResult TryEnqueue(LogRecord[] logs, out PendingLogs? pending)
    {
        pending = null;
        if (!_accepting)
        {
            return EnqueueResult.ShuttingDown;
        }

        if (Interlocked.Add(ref _queuedLogs, logs.Length) > _options.QueueCapacity)
        {
            Interlocked.Add(ref _queuedLogs, -logs.Length);
            return EnqueueResult.QueueFull;
        }

        var deadline = _time.GetTimestamp() + (long)(_options.CommitTimeoutSeconds * (double)_time.TimestampFrequency);
        pending = new PendingLogs(logs, deadline);
        if (!_queue.Writer.TryWrite(pending))
        {
            // Shutdown completed the queue between the check above and this write.
            Interlocked.Add(ref _queuedLogs, -logs.Length);
            pending = null;
            return EnqueueResult.ShuttingDown;
        }

        return EnqueueResult.Queued;
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        // The loops deliberately ignore stoppingToken: on shutdown they drain the queue, then end.
        Task.WhenAll(Enumerable.Range(0, _options.Writers).Select(_ => Task.Run(RunWriterAsync, CancellationToken.None)));

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _accepting = false;
        _queue.Writer.TryComplete();
        var queued = Interlocked.Read(ref _queuedLogs);
        LogDraining(queued);
        await base.StopAsync(cancellationToken);
    }

    private async Task RunWriterAsync()
    {
        var batch = new List<PendingLogs>();
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync())
        {
            var logs = BatchingPolicy.Fill(batch, _options.MaxBatchSize, reader.TryRead);
            if (logs < _options.MaxBatchSize && _options.LingerMilliseconds > 0)
            {
                await Task.Delay(_options.LingerMilliseconds);
                logs = BatchingPolicy.Fill(batch, _options.MaxBatchSize, reader.TryRead, logs);
            }

            Interlocked.Add(ref _queuedLogs, -logs);
            await WriteAsync(batch);
            batch.Clear();
        }
    }

    private async Task WriteAsync(List<PendingLogs> batch)
    {
        var failures = 0;
        AmbiguousCommitException? ambiguous = null;
        while (true)
        {
            if (ambiguous is not null)
            {
                // Until it is known whether that attempt committed, its requests are neither retried (that could
                // write them twice) nor answered 503 (they may be stored).
                try
                {
                    if (await _committer.WasCommittedAsync(ambiguous.BatchId, CancellationToken.None))
                    {
                        Settle(ambiguous.Batch);
                        batch.RemoveAll(pending => pending.IsSettled);
                    }

                    ambiguous = null;
                }
                catch (Exception exception) when (exception is not OperationCanceledException)
                {
                    await Task.Delay(Backoff(failures++));
                    continue;
                }
            }

            _metrics.Rejected(BatchingPolicy.ExpireOverdue(batch, _time.GetTimestamp()), "timeout");
            if (batch.Count == 0)
            {
                if (failures > 0)
                {
                    Interlocked.Decrement(ref _failingWriters);
                }

                return;
            }

            try
            {
                var refused = await BatchingPolicy.CommitIsolatingRefusalsAsync(batch, CommitAndSettleAsync, LogBatchCommitter.IsRefusal);
                foreach (var request in refused)
                {
                    _metrics.Rejected(request.Logs.Length, "refused");
                    LogRefused(request.Logs.Length);
                }

                if (failures > 0 && Interlocked.Decrement(ref _failingWriters) == 0)
                {
                    LogRecovered();
                }

                return;
            }
            catch (Exception exception)
            {
                if (exception is AmbiguousCommitException uncertain)
                {
                    ambiguous = uncertain;
                    LogAmbiguousCommit(uncertain.BatchId);
                }

                // Parts committed before the failure are settled: only the rest is retried, so nothing is written twice.
                batch.RemoveAll(pending => pending.IsSettled);
                if (failures++ == 0 && Interlocked.Increment(ref _failingWriters) == 1)
                {
                    // Logged once per outage, not once per retry.
                    LogCommitFailing(exception);
                }

                await Task.Delay(Backoff(failures));
            }
        }
    }

    private static TimeSpan Backoff(int failures) =>
        TimeSpan.FromMilliseconds(Math.Min(MaxBackoff.TotalMilliseconds, 25 * Math.Pow(2, Math.Min(failures, 10)))
            + Random.Shared.Next(0, 25));

    private async Task CommitAndSettleAsync(IReadOnlyList<PendingLogs> part)
    {
        using var activity = IngestMetrics.ActivitySource.StartActivity("ingest batch");
        var logs = part.Sum(pending => pending.Logs.Length);
        activity?.SetTag("tracker.ingest.requests", part.Count);
        activity?.SetTag("tracker.ingest.logs", logs);
        var started = _time.GetTimestamp();
        try
        {
            await _committer.CommitAsync(part, Guid.CreateVersion7(), CancellationToken.None);
            _metrics.Committed(logs, _time.GetElapsedTime(started));
            Settle(part);
        }
        catch (Exception exception)
        {
            activity?.AddException(exception);
            activity?.SetStatus(ActivityStatusCode.Error);
            throw;
        }
    }

    private void Settle(IReadOnlyList<PendingLogs> committed)
    {
        // Caches hear of the change before any client hears 201, so a fresh read after a 201 sees it.
        NotifyUsageChanged([.. committed.SelectMany(pending => pending.Logs).Select(log => log.ClientId).Distinct()]);
        PendingLogs.SettleAll(committed, WriteOutcome.Committed);
    }

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

    [LoggerMessage(Level = LogLevel.Warning, Message = "The connection failed while committing ingest batch {BatchId}; checking whether it was committed before retrying")]
    private partial void LogAmbiguousCommit(Guid batchId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Committing activity logs works again")]
    private partial void LogRecovered();

    [LoggerMessage(Level = LogLevel.Warning, Message = "The database refused a request's {Count} log(s); the other requests of the batch were committed")]
    private partial void LogRefused(int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stopping ingest: refusing new logs, committing the {Count} queued")]
    private partial void LogDraining(long count);
}
