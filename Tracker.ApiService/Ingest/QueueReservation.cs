namespace Tracker.ApiService.Ingest;

/// <summary>
/// Room in the ingest queue taken for one request's logs (<see cref="LogBatchWriter.TryReserve(LogRecord[], out QueueReservation?)"/>),
/// or for at most so many logs of so many bytes before they are parsed: the logs are queued once with
/// <see cref="Enqueue"/>, and the room is given back when the reservation is disposed without that, or when the writer
/// stopped taking logs meanwhile. Used by one request at a time.
/// </summary>
public sealed class QueueReservation : IDisposable
{
    private readonly LogBatchWriter _writer;
    private readonly Guid _clientId;
    private long _logs;
    private long _bytes;
    private bool _settled;

    internal QueueReservation(LogBatchWriter writer, Guid clientId, long logs, long bytes)
    {
        _writer = writer;
        _clientId = clientId;
        _logs = logs;
        _bytes = bytes;
    }

    /// <summary>Whether the room is enough for <paramref name="logs"/> (a request's, so its client's).</summary>
    public bool Holds(LogRecord[] logs) => !_settled && Fits(logs) >= 0;

    // The logs' estimated bytes when the room holds them, else -1.
    private long Fits(LogRecord[] logs)
    {
        if (logs.Length > _logs)
        {
            return -1;
        }

        long bytes = 0;
        foreach (var log in logs)
        {
            bytes += QueueBudget.EstimateBytes(log);
        }

        return bytes <= _bytes ? bytes : -1;
    }

    /// <summary>
    /// Queues the logs, which the room must hold (<see cref="Holds"/>); on <see cref="EnqueueResult.Queued"/>, await
    /// <see cref="PendingLogs.Outcome"/>.
    /// </summary>
    public EnqueueResult Enqueue(LogRecord[] logs, out PendingLogs? pending)
    {
        ObjectDisposedException.ThrowIf(_settled, this);
        var bytes = Fits(logs);
        if (bytes < 0)
        {
            throw new ArgumentException("The logs are more than the reservation holds.", nameof(logs));
        }

        // Room reserved for logs not yet parsed is given back down to what they turned out to need.
        _writer.ReleaseReserved(_clientId, _logs - logs.Length, _bytes - bytes);
        _logs = logs.Length;
        _bytes = bytes;

        // Settled only once queueing returned: if it throws, disposing still gives the room back.
        var queued = _writer.EnqueueReserved(logs, bytes, out pending);
        _settled = true;
        if (queued != EnqueueResult.Queued)
        {
            _writer.ReleaseReserved(_clientId, _logs, _bytes);
        }

        return queued;
    }

    public void Dispose()
    {
        if (!_settled)
        {
            _settled = true;
            _writer.ReleaseReserved(_clientId, _logs, _bytes);
        }
    }
}
