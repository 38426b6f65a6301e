using System.Collections.Concurrent;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// What the ingest queue may hold: logs and (estimated) bytes in all, and for one client at most a share of each,
/// so one tenant's flood fills its own share and is refused, while everyone else's logs still get in. Thread-safe;
/// a reservation is taken when a request is queued and given back when a writer takes it from the queue.
/// </summary>
public sealed class QueueBudget(long maxLogs, long maxBytes, double clientShare)
{
    private readonly ConcurrentDictionary<Guid, Usage> _byClient = new();
    private long _logs;
    private long _bytes;

    /// <summary>Logs held now.</summary>
    public long Logs => Interlocked.Read(ref _logs);

    /// <summary>Estimated bytes held now.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Reserves room for <paramref name="logs"/> logs of <paramref name="bytes"/> bytes of one client.</summary>
    public EnqueueResult TryReserve(Guid clientId, long logs, long bytes)
    {
        var client = _byClient.GetOrAdd(clientId, static _ => new Usage());
        var clientLogs = Interlocked.Add(ref client.Logs, logs);
        var clientBytes = Interlocked.Add(ref client.Bytes, bytes);
        var totalLogs = Interlocked.Add(ref _logs, logs);
        var totalBytes = Interlocked.Add(ref _bytes, bytes);
        // A request larger than a share on its own is still let in when the client holds nothing else: the share
        // bounds a backlog, it must not make a maximum-size batch impossible.
        var overShare = (clientLogs > maxLogs * clientShare || clientBytes > maxBytes * clientShare) && clientLogs != logs;
        var overTotal = totalLogs > maxLogs || totalBytes > maxBytes;
        if (!overShare && !overTotal)
        {
            return EnqueueResult.Queued;
        }

        Release(clientId, logs, bytes);
        return overTotal ? EnqueueResult.QueueFull : EnqueueResult.ClientShareFull;
    }

    /// <summary>
    /// Whether <see cref="TryReserve"/> would refuse any request of <paramref name="clientId"/> now, whatever its size:
    /// the queue is full, or the client holds its whole share.
    /// </summary>
    public EnqueueResult Peek(Guid clientId)
    {
        if (Logs >= maxLogs || Bytes >= maxBytes)
        {
            return EnqueueResult.QueueFull;
        }

        return _byClient.TryGetValue(clientId, out var client)
            && (Interlocked.Read(ref client.Logs) >= maxLogs * clientShare || Interlocked.Read(ref client.Bytes) >= maxBytes * clientShare)
            ? EnqueueResult.ClientShareFull
            : EnqueueResult.Queued;
    }

    /// <summary>Gives back what <see cref="TryReserve"/> took.</summary>
    public void Release(Guid clientId, long logs, long bytes)
    {
        if (_byClient.TryGetValue(clientId, out var client))
        {
            Interlocked.Add(ref client.Logs, -logs);
            Interlocked.Add(ref client.Bytes, -bytes);
        }

        Interlocked.Add(ref _logs, -logs);
        Interlocked.Add(ref _bytes, -bytes);
    }

    /// <summary>
    /// The memory a queued log holds, roughly: its strings (UTF-16) and the record, address and queue entry around
    /// them. An estimate is enough: the bound is there so that long endpoints cannot make the queue's memory grow
    /// with them.
    /// </summary>
    public static long EstimateBytes(LogRecord log) =>
        160 + 2L * (log.Endpoint.Length + log.Method.Length + (log.Id?.Length ?? 0));

    /// <summary>The estimated bytes of a request's logs.</summary>
    public static long EstimateBytes(LogRecord[] logs)
    {
        long bytes = 0;
        foreach (var log in logs)
        {
            bytes += EstimateBytes(log);
        }

        return bytes;
    }

    /// <summary>
    /// At least <see cref="EstimateBytes(LogRecord[])"/> of <paramref name="logs"/> logs not yet parsed, whose string
    /// values take <paramref name="stringBytes"/> bytes of UTF-8 JSON (a character takes at least one byte), with room
    /// for the ids an Idempotency-Key derives (<see cref="IdempotencyKeys.DeriveLogId"/>: at most 37 characters).
    /// </summary>
    public static long EstimateBytes(int logs, long stringBytes, bool derivedIds) =>
        160L * logs + 2 * stringBytes + (derivedIds ? 2L * 37 * logs : 0);

    private sealed class Usage
    {
        public long Logs;
        public long Bytes;
    }
}
