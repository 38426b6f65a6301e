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
}

/// <summary>One request's logs in the queue, with the promise its request awaits.</summary>
public sealed class PendingLogs(LogRecord[] logs, long deadlineTimestamp)
{
    private readonly TaskCompletionSource<WriteOutcome> _outcome = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public LogRecord[] Logs { get; } = logs;

    /// <summary><see cref="TimeProvider.GetTimestamp"/> after which the request is answered 503 if still unwritten.</summary>
    public long DeadlineTimestamp { get; } = deadlineTimestamp;

    public Task<WriteOutcome> Outcome => _outcome.Task;

    public void Settle(WriteOutcome outcome) => _outcome.TrySetResult(outcome);
}
