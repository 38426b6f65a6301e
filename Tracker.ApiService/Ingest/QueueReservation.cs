namespace Tracker.ApiService.Ingest;

/// <summary>
/// Room in the ingest queue taken for one request's logs (<see cref="LogBatchWriter.TryReserve"/>): the logs are
/// queued once with <see cref="Enqueue"/>, and the room is given back when the reservation is disposed without that,
/// or when the writer stopped taking logs meanwhile. Used by one request at a time.
/// </summary>
public sealed class QueueReservation : IDisposable
{
    private readonly LogBatchWriter _writer;
    private readonly LogRecord[] _logs;
    private readonly long _bytes;
    private bool _settled;

    internal QueueReservation(LogBatchWriter writer, LogRecord[] logs, long bytes)
    {
        _writer = writer;
        _logs = logs;
        _bytes = bytes;
    }

    /// <summary>Queues the logs; on <see cref="EnqueueResult.Queued"/>, await <see cref="PendingLogs.Outcome"/>.</summary>
    public EnqueueResult Enqueue(out PendingLogs? pending)
    {
        ObjectDisposedException.ThrowIf(_settled, this);
        // Settled only once queueing returned: if it throws, disposing still gives the room back.
        var queued = _writer.EnqueueReserved(_logs, _bytes, out pending);
        _settled = true;
        if (queued != EnqueueResult.Queued)
        {
            _writer.ReleaseReserved(_logs, _bytes);
        }

        return queued;
    }

    public void Dispose()
    {
        if (!_settled)
        {
            _settled = true;
            _writer.ReleaseReserved(_logs, _bytes);
        }
    }
}
