namespace Tracker.ApiService.Ingest;

/// <summary>How the writer settled a request's logs.</summary>
public enum WriteOutcome
{
    /// <summary>Committed in PostgreSQL.</summary>
    Committed,

    /// <summary>Not committed before the commit timeout (database unreachable); nothing of it was written.</summary>
    TimedOut,

    /// <summary>The database refused a row of this request; nothing of it was written, other requests were.</summary>
    Refused,

    /// <summary>
    /// The connection failed while the COMMIT holding these logs was in flight, and PostgreSQL could not be asked
    /// before the commit timeout whether it was stored: it may have been.
    /// </summary>
    Unknown,

    /// <summary>
    /// Writing this request's logs met a fault in Tracker's own code (not the database): nothing of it was
    /// written, other requests were.
    /// </summary>
    Failed,
}

/// <summary>One request's logs in the queue, with the promise its request awaits.</summary>
/// <remarks>
/// Settling is split in two. <see cref="Settle"/> and <see cref="SettleAll"/> decide the outcome at once, on the
/// writer's thread, so <see cref="IsSettled"/> is true before the writer moves on (its retries rely on that). The
/// waiting requests are then released from one thread-pool work item per call, running their continuations there
/// one after another: a commit of 60 requests costs one hop instead of 60 wake-ups (the default with
/// <see cref="TaskCreationOptions.RunContinuationsAsynchronously"/>), and the writer never runs request code itself.
/// On two cores the hops cost more CPU than the continuations they deliver.
/// </remarks>
public sealed class PendingLogs(LogRecord[] logs, long deadlineTimestamp, long bytes = 0)
{
    // Continuations run synchronously, on the work item that releases them.
    private readonly TaskCompletionSource<WriteOutcome> _outcome = new();
    private int _settled;
    private WriteOutcome _settledAs;

    public LogRecord[] Logs { get; } = logs;

    /// <summary>The memory the logs hold, as the queue's budget estimated it.</summary>
    public long Bytes { get; } = bytes;

    /// <summary><see cref="TimeProvider.GetTimestamp"/> after which the request is answered 503 if still unwritten.</summary>
    public long DeadlineTimestamp { get; } = deadlineTimestamp;

    public Task<WriteOutcome> Outcome => _outcome.Task;

    /// <summary>
    /// Once <see cref="Outcome"/> is <see cref="WriteOutcome.Committed"/>: how many of the logs were not stored because
    /// a log with the same id and timestamp already was. Set by the writer before it settles.
    /// </summary>
    public int Duplicates { get; internal set; }

    /// <summary>Whether the outcome is decided (the request may not have heard of it yet).</summary>
    public bool IsSettled => Volatile.Read(ref _settled) == 1;

    /// <summary>Decides this request's outcome and releases its request in the background.</summary>
    public void Settle(WriteOutcome outcome) => SettleAll([this], outcome);

    /// <summary>Decides the outcome of every request of <paramref name="requests"/> and releases them together.</summary>
    public static void SettleAll(IReadOnlyList<PendingLogs> requests, WriteOutcome outcome)
    {
        var decided = new List<PendingLogs>(requests.Count);
        foreach (var pending in requests)
        {
            if (Interlocked.Exchange(ref pending._settled, 1) == 0)
            {
                pending._settledAs = outcome;
                decided.Add(pending);
            }
        }

        if (decided.Count > 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static decided =>
            {
                foreach (var pending in decided)
                {
                    pending._outcome.TrySetResult(pending._settledAs);
                }
            }, decided, preferLocal: false);
        }
    }
}
