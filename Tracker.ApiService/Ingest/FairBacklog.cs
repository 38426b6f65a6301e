namespace Tracker.ApiService.Ingest;

/// <summary>
/// The ingest queue: one queue per client, served round robin. A batch takes one request from each client with
/// requests waiting, in turn, then goes round again until it is full, so a client that queued thousands of logs
/// delays another client's log by at most one of its own requests per batch, not by its whole backlog (as a
/// single first-in-first-out queue would). Several writer loops may read at once.
/// </summary>
/// <remarks>
/// Hand-written because System.Threading.Channels has no keyed or fair reader; every operation is a short critical
/// section under one lock, taken once per request queued and once per batch formed.
/// </remarks>
public sealed class FairBacklog
{
    private readonly Lock _lock = new();
    private readonly Dictionary<Guid, Queue<PendingLogs>> _byClient = [];
    private readonly Queue<Guid> _turns = new();
    private TaskCompletionSource _available = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _completed;

    /// <summary>Queues <paramref name="pending"/> behind its client's earlier requests; false once completed.</summary>
    public bool TryWrite(Guid clientId, PendingLogs pending)
    {
        TaskCompletionSource? wake = null;
        lock (_lock)
        {
            if (_completed)
            {
                return false;
            }

            if (!_byClient.TryGetValue(clientId, out var queue))
            {
                queue = new Queue<PendingLogs>();
                _byClient[clientId] = queue;
            }

            if (queue.Count == 0)
            {
                _turns.Enqueue(clientId);
            }

            queue.Enqueue(pending);
            if (!_available.Task.IsCompleted)
            {
                wake = _available;
            }
        }

        wake?.TrySetResult();
        return true;
    }

    /// <summary>No more writes; readers drain what is queued, then <see cref="WaitToReadAsync"/> returns false.</summary>
    public void Complete()
    {
        TaskCompletionSource wake;
        lock (_lock)
        {
            _completed = true;
            wake = _available;
        }

        wake.TrySetResult();
    }

    /// <summary>Waits until a request is queued (true) or the queue is completed and empty (false).</summary>
    public async Task<bool> WaitToReadAsync()
    {
        while (true)
        {
            Task wait;
            lock (_lock)
            {
                if (_turns.Count > 0)
                {
                    return true;
                }

                if (_completed)
                {
                    return false;
                }

                if (_available.Task.IsCompleted)
                {
                    _available = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                wait = _available.Task;
            }

            await wait;
        }
    }

    /// <summary>
    /// Adds requests to <paramref name="batch"/>, one per client in turn, until it holds <paramref name="maxLogs"/>
    /// logs (a request is never split, so the last may go past it) or nothing is queued; returns the logs it holds.
    /// </summary>
    public int Fill(List<PendingLogs> batch, int maxLogs, int alreadyTaken = 0)
    {
        var logs = alreadyTaken;
        lock (_lock)
        {
            while (logs < maxLogs && _turns.TryDequeue(out var clientId))
            {
                var queue = _byClient[clientId];
                var next = queue.Dequeue();
                batch.Add(next);
                logs += next.Logs.Length;
                if (queue.Count > 0)
                {
                    _turns.Enqueue(clientId);
                }
                else
                {
                    // Forgotten when idle, so the map holds only clients with requests waiting.
                    _byClient.Remove(clientId);
                }
            }
        }

        return logs;
    }
}
