using System.Collections.Concurrent;
using System.Threading.Channels;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// The ingest queue: one queue per client, served round robin. A batch visits the clients with requests waiting in
/// turn and takes from each, in its turn, at most a quantum of bytes (at least one request; a request is never
/// split), so a client that queued thousands of logs delays another client's log by at most one quantum of its own
/// per batch, not by its whole backlog (as a single first-in-first-out queue would). A client visited by a batch is
/// held by it until the batch is released after its commit: no other writer loop takes that client's requests
/// meanwhile, so one client's logs are committed by one writer at a time, in order, and a writer loop committing a
/// flooder's batch leaves every other client to the others.
/// </summary>
/// <remarks>
/// System.Threading.Channels has no keyed or fair reader, so this is built from parts that are: each client's
/// requests wait in a lock-free queue of its own, and a channel of turns holds each client with requests waiting
/// and not held exactly once (its <c>Enlisted</c> flag, which stays set while a batch holds it), in the order they
/// are to be served. Queueing takes no lock: a first version that took one per request cost about 5 µs of CPU per
/// single-log request on two cores. A client's line is kept once made (a few hundred bytes per client that ever
/// sent logs to this instance).
/// </remarks>
public sealed class FairBacklog
{
    private readonly ConcurrentDictionary<Guid, ClientLine> _lines = new();
    private readonly Channel<ClientLine> _turns = Channel.CreateUnbounded<ClientLine>(
        new UnboundedChannelOptions { SingleReader = false, SingleWriter = false });

    /// <summary>Queues <paramref name="pending"/> behind its client's earlier requests; false once completed.</summary>
    public bool TryWrite(Guid clientId, PendingLogs pending)
    {
        var line = _lines.GetOrAdd(clientId, static _ => new ClientLine());
        line.Requests.Enqueue(pending);
        if (Interlocked.CompareExchange(ref line.Enlisted, 1, 0) == 0 && !_turns.Writer.TryWrite(line))
        {
            // Completed: shutdown refuses new requests. Take this one back out unless a reader already has it.
            Volatile.Write(ref line.Enlisted, 0);
            return !TryTakeBack(line, pending);
        }

        return true;
    }

    /// <summary>No more writes; readers drain what is queued, then <see cref="WaitToReadAsync"/> returns false.</summary>
    public void Complete() => _turns.Writer.TryComplete();

    /// <summary>Waits until a client not held by a batch has a request queued (true) or the queue is completed and empty (false).</summary>
    public ValueTask<bool> WaitToReadAsync() => _turns.Reader.WaitToReadAsync();

    /// <summary>
    /// Adds requests to <paramref name="batch"/>: first more of the clients it already holds, then from each client
    /// in turn, each up to <paramref name="maxClientBytes"/> (estimated) of its logs in this batch, until the batch
    /// holds <paramref name="maxLogs"/> logs (the last request may go past it) or no client is waiting. Every client
    /// taken from is held until <see cref="Release"/>.
    /// </summary>
    public void Fill(Batch batch, int maxLogs, long maxClientBytes)
    {
        foreach (var visit in batch.Visits)
        {
            Take(batch, visit, maxLogs, maxClientBytes);
        }

        while (batch.Logs < maxLogs && _turns.Reader.TryRead(out var line))
        {
            var visit = new Visit(line);
            batch.Visits.Add(visit);
            Take(batch, visit, maxLogs, maxClientBytes);
        }
    }

    /// <summary>
    /// Once <paramref name="batch"/> is settled: empties it and gives each client it held its turn again if it has
    /// requests waiting. After <see cref="Complete"/> no turn can be given any more, so those requests are put into
    /// <paramref name="batch"/> instead, for the caller to write.
    /// </summary>
    public void Release(Batch batch)
    {
        batch.Requests.Clear();
        batch.Logs = 0;
        batch.Bytes = 0;
        batch.IsBig = false;
        foreach (var visit in batch.Visits)
        {
            var line = visit.Line;
            if (line.Requests.IsEmpty)
            {
                // A full fence (not a release store): the emptiness check below must not be read before the reset is
                // seen, or a request queued meanwhile, whose writer saw the flag still set, would be left without a turn.
                Interlocked.Exchange(ref line.Enlisted, 0);
                // A request queued between the emptiness check and the flag's reset found the flag still set and did
                // not enlist: enlist for it.
                if (line.Requests.IsEmpty || Interlocked.CompareExchange(ref line.Enlisted, 1, 0) != 0)
                {
                    continue;
                }
            }

            if (!_turns.Writer.TryWrite(line))
            {
                while (line.Requests.TryDequeue(out var next))
                {
                    batch.Add(next);
                }
            }
        }

        batch.Visits.Clear();
    }

    private static void Take(Batch batch, Visit visit, int maxLogs, long maxClientBytes)
    {
        while (batch.Logs < maxLogs && visit.Bytes < maxClientBytes && visit.Line.Requests.TryDequeue(out var next))
        {
            batch.Add(next);
            visit.Bytes += next.Bytes;
            visit.Logs += next.Logs.Length;
        }

        // One client's share, not the batch's total: many small clients together are not one flood, and a client
        // with short logs fills a batch by count long before it reaches its bytes.
        batch.IsBig |= visit.Bytes >= maxClientBytes || visit.Logs >= maxLogs / 2;
    }

    private static bool TryTakeBack(ClientLine line, PendingLogs pending)
    {
        // Only at shutdown, and only if the request is still the line's last one; otherwise a reader will take it.
        var kept = new List<PendingLogs>();
        var found = false;
        while (line.Requests.TryDequeue(out var queued))
        {
            if (ReferenceEquals(queued, pending))
            {
                found = true;
                continue;
            }

            kept.Add(queued);
        }

        foreach (var queued in kept)
        {
            line.Requests.Enqueue(queued);
        }

        return found;
    }

    /// <summary>
    /// A writer loop's batch: the requests it took, and the clients it holds until <see cref="Release"/>. One per
    /// loop, reused; fill, write, release.
    /// </summary>
    public sealed class Batch
    {
        internal List<Visit> Visits { get; } = [];

        public List<PendingLogs> Requests { get; } = [];

        /// <summary>Logs in <see cref="Requests"/>.</summary>
        public int Logs { get; internal set; }

        /// <summary>Estimated bytes of <see cref="Requests"/> (see <see cref="QueueBudget.EstimateBytes(LogRecord)"/>).</summary>
        public long Bytes { get; internal set; }

        /// <summary>
        /// One client took its whole share of bytes in this batch, or half its logs: a flooder's commit, which must
        /// not keep the small commits' slot (see <see cref="IngestOptions.Writers"/>).
        /// </summary>
        public bool IsBig { get; internal set; }

        internal void Add(PendingLogs pending)
        {
            Requests.Add(pending);
            Logs += pending.Logs.Length;
            Bytes += pending.Bytes;
        }
    }

    /// <summary>One client's waiting requests, and whether it holds a turn or is held by a batch.</summary>
    internal sealed class ClientLine
    {
        public readonly ConcurrentQueue<PendingLogs> Requests = new();
        public int Enlisted;
    }

    /// <summary>A batch's hold on one client, and how much it has taken from it.</summary>
    internal sealed class Visit(ClientLine line)
    {
        public ClientLine Line { get; } = line;

        public long Bytes { get; set; }

        public int Logs { get; set; }
    }
}
