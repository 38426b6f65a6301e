using System.ComponentModel.DataAnnotations;

namespace Tracker.ApiService.Ingest;

/// <summary>When a log request is answered.</summary>
public enum AcknowledgeMode
{
    /// <summary>201 once the log is committed in PostgreSQL (the default, and the product's promise).</summary>
    Committed,

    /// <summary>
    /// 202 as soon as the log is queued: lower latency, at most once. A 202'd log is lost if the process crashes
    /// before committing it, and discarded if it is not committed within <see cref="IngestOptions.CommitTimeoutSeconds"/>
    /// or the database refuses it; the client is not told (the rejection is only counted).
    /// </summary>
    Queued,
}

/// <summary>The batching log writer and its endpoints (<c>Ingest</c> section).</summary>
public sealed class IngestOptions
{
    public const string SectionName = "Ingest";

    /// <summary>Logs waiting to be written, at most; beyond it requests get 503 with Retry-After at once.</summary>
    [Range(1, 10_000_000)]
    public int QueueCapacity { get; set; } = 200_000;

    /// <summary>
    /// The memory logs waiting to be written may hold, at most (estimated from their strings); beyond it requests get
    /// 503 at once. Bounds the queue when logs are long: 200,000 logs of 2,048-character endpoints would be 800 MB.
    /// </summary>
    [Range(1_048_576, 16L * 1024 * 1024 * 1024)]
    public long QueueCapacityBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// The share of the queue (of its logs, and of its bytes) one client may hold; past it that client's requests get
    /// 429 with Retry-After at once, and other clients still get in. A client holding nothing is always let in.
    /// </summary>
    [Range(1, 100)]
    public int ClientQueueSharePercent { get; set; } = 25;

    /// <summary>Logs per transaction, at most (a request's logs are never split across transactions).</summary>
    [Range(1, 100_000)]
    public int MaxBatchSize { get; set; } = 5_000;

    /// <summary>
    /// Small batches committed in parallel, each on its own connection. One by default: a single loop's batches hold
    /// what arrived during the previous commit, about twice what two loops' do, and PostgreSQL's cost per log falls
    /// with batch size (on the benchmark machine, with PostgreSQL on the same two cores, by about a quarter; see
    /// docs/performance.md). More help when the database has cores of its own and commits wait on its disk. One more
    /// loop commits beside a big batch (one client's <see cref="MaxClientBytesPerBatch"/>, or half of
    /// <see cref="MaxBatchSize"/> logs from one client), so that one tenant's large
    /// batches never make another tenant's logs wait for their commits; a client's logs are committed by one loop at
    /// a time.
    /// </summary>
    [Range(1, 64)]
    public int Writers { get; set; } = 1;

    /// <summary>
    /// The (estimated) bytes of logs a batch takes from one client in its turn, at most; a request is never split, so
    /// a batch takes at least one. A batch holding this much of one client's is big: its commit takes long enough
    /// that another loop commits other clients' logs beside it (see <see cref="Writers"/>).
    /// </summary>
    [Range(1024, 1L * 1024 * 1024 * 1024)]
    public long MaxClientBytesPerBatch { get; set; } = 1024 * 1024;

    /// <summary>How long a writer waits for more logs before writing a batch that is not full; 0 writes at once.</summary>
    [Range(0, 1000)]
    public int LingerMilliseconds { get; set; }

    /// <summary>A request whose logs are not committed this long after it was queued gets 503.</summary>
    [Range(1, 300)]
    public int CommitTimeoutSeconds { get; set; } = 5;

    /// <summary>
    /// The bodies of one client's batch requests being read, parsed or waiting for their commit at once, at most, in
    /// bytes (a request counts its <c>Content-Length</c>); the client's further batches wait unread until room frees,
    /// and past 16 times this waiting they get 429 at once. Bounds the work and memory one tenant's batches take.
    /// </summary>
    [Range(65_536, 64 * 1024 * 1024)]
    public int MaxClientBatchBytesInFlight { get; set; } = 4 * 1024 * 1024;

    /// <summary>Logs in one batch request, at most.</summary>
    [Range(1, 100_000)]
    public int MaxLogsPerBatchRequest { get; set; } = 1000;

    public AcknowledgeMode Acknowledge { get; set; } = AcknowledgeMode.Committed;

    /// <summary>How long a completed request's <c>Idempotency-Key</c> is remembered, with its answer, for repeats.</summary>
    [Range(1, 168)]
    public int IdempotencyKeyHours { get; set; } = 24;
}

/// <summary>How long logs and their rollups are kept (<c>Retention</c> section).</summary>
public sealed class RetentionOptions
{
    public const string SectionName = "Retention";

    /// <summary>Raw logs: older daily partitions are dropped.</summary>
    [Range(1, 3650)]
    public int Days { get; set; } = 90;

    /// <summary>Hourly rollups (at least <see cref="Days"/>): older hours are deleted, so trends outlive the logs.</summary>
    [Range(1, 3650)]
    public int RollupDays { get; set; } = 400;
}
