using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Tracker.ApiService.Auth;
using Tracker.ApiService.RateLimiting;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// What a client's batch requests may hold before their bodies are read: at most
/// <see cref="IngestOptions.MaxClientBatchBytesInFlight"/> of bodies per client being read, parsed or waiting for
/// their commit (a request counts its <c>Content-Length</c>); the client's other batches wait, unread, until that
/// room frees. A batch is refused at once, unread, when the queue would refuse any request of its client
/// (<see cref="LogBatchWriter.Peek"/>), when more than <see cref="QueuedPerInFlight"/> times the room is waiting, or
/// when the room does not free within <see cref="IngestOptions.CommitTimeoutSeconds"/> (as during an outage, when
/// every batch in flight holds its room until its own deadline). Within its room, a client's bodies are read and
/// paid for one at a time over HTTP/1 (<see cref="WaitForReadingTurnAsync"/>).
/// </summary>
/// <remarks>
/// Measured with one tenant sending maximum-size batches (about a megabyte each) on 32 connections: reading and
/// parsing every one of them took both cores and half a gigabyte, though the queue refused nine in ten after parsing,
/// and every other tenant's requests waited behind that work. Bounding what one client has in flight bounds that work
/// to what the writer can take. An endpoint filter runs only after the body is bound, so this wraps the endpoint's
/// request delegate in a convention instead: it runs after authentication, authorization and rate limiting.
/// <para>
/// The reading turn: under the product's limits the same flood is refused by the key's budget (99.6% of its batches),
/// and once a refusal costs only reading and counting the body (<see cref="BatchPrepayment"/>) the flooder simply
/// sends more, reading four bodies at once within its room; the other tenant's p99 stayed at 25–32 ms. Read one at a
/// time, a client's bodies take at most about one core, and the other tenant's p99 fell to 16–21 ms (27 in a slow
/// spell; docs/performance.md).
/// </para>
/// </remarks>
public sealed class BatchAdmission : IDisposable
{
    /// <summary>Bodies that may wait for room, in multiples of the room itself.</summary>
    public const int QueuedPerInFlight = 16;

    private readonly int _room;
    private readonly TimeSpan _patience;
    private readonly PartitionedRateLimiter<Guid> _inFlight;
    private readonly PartitionedRateLimiter<Guid> _reading;

    public BatchAdmission(IOptions<IngestOptions> options)
    {
        _room = options.Value.MaxClientBatchBytesInFlight;
        _patience = TimeSpan.FromSeconds(options.Value.CommitTimeoutSeconds);
        _inFlight = PerClient(permits: _room, queued: _room * QueuedPerInFlight);
        // Every body waiting for a turn holds room, so the room bounds this queue.
        _reading = PerClient(permits: 1, queued: _room * QueuedPerInFlight);
    }

    // A concurrency limiter per client, the oldest waiter served first.
    private static PartitionedRateLimiter<Guid> PerClient(int permits, int queued)
    {
        var options = new ConcurrencyLimiterOptions
        {
            PermitLimit = permits,
            QueueLimit = queued,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        };
        // One delegate for every client, so that finding a client's limiter allocates nothing.
        Func<Guid, RateLimiter> limiter = _ => new ConcurrencyLimiter(options);
        return PartitionedRateLimiter.Create<Guid, Guid>(clientId => RateLimitPartition.Get(clientId, limiter));
    }

    /// <summary>
    /// Waits for room for a body of <paramref name="contentLength"/> bytes (a body without a length counts as the
    /// whole room); the lease is not acquired when too much of the client's is waiting already, or when no room
    /// freed in time. Throws <see cref="OperationCanceledException"/> only when <paramref name="requestAborted"/> fires.
    /// </summary>
    public ValueTask<RateLimitLease> WaitForRoomAsync(Guid clientId, long? contentLength, CancellationToken requestAborted)
    {
        var bytes = (int)Math.Clamp(contentLength ?? _room, 1, _room);
        // Most batches find room at once (and the limiter lets none pass a client's waiting ones): decided without the
        // timer and linked token that only a wait needs.
        var lease = _inFlight.AttemptAcquire(clientId, bytes);
        if (lease.IsAcquired)
        {
            return ValueTask.FromResult(lease);
        }

        lease.Dispose();
        return WaitAsync(_inFlight, clientId, bytes, requestAborted);
    }

    /// <summary>
    /// Waits for the client's turn to read and pay for a body (one at a time per client, among bodies that have their
    /// room); not acquired when the turn did not come within <see cref="IngestOptions.CommitTimeoutSeconds"/>, as when
    /// another of the client's bodies arrives slowly. Throws <see cref="OperationCanceledException"/> only when
    /// <paramref name="requestAborted"/> fires.
    /// </summary>
    public ValueTask<RateLimitLease> WaitForReadingTurnAsync(Guid clientId, CancellationToken requestAborted)
    {
        var lease = _reading.AttemptAcquire(clientId);
        if (lease.IsAcquired)
        {
            return ValueTask.FromResult(lease);
        }

        lease.Dispose();
        return WaitAsync(_reading, clientId, 1, requestAborted);
    }

    private async ValueTask<RateLimitLease> WaitAsync(PartitionedRateLimiter<Guid> limiter, Guid clientId, int permits, CancellationToken requestAborted)
    {
        using var patience = CancellationTokenSource.CreateLinkedTokenSource(requestAborted);
        patience.CancelAfter(_patience);
        try
        {
            return await limiter.AcquireAsync(clientId, permits, patience.Token);
        }
        catch (OperationCanceledException) when (!requestAborted.IsCancellationRequested)
        {
            return NoRoom.Instance;
        }
    }

    public void Dispose()
    {
        _inFlight.Dispose();
        _reading.Dispose();
    }

    private sealed class NoRoom : RateLimitLease
    {
        public static readonly NoRoom Instance = new();

        public override bool IsAcquired => false;

        public override IEnumerable<string> MetadataNames => [];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = null;
            return false;
        }
    }
}

public static class BatchAdmissionExtensions
{
    /// <summary>
    /// Admits the route's requests through <see cref="BatchAdmission"/> before their bodies are read, then (when the
    /// request is rate limited) takes its queue room and charges its logs through <see cref="BatchPrepayment"/>
    /// before the body is parsed.
    /// </summary>
    public static RouteHandlerBuilder AdmitByClientBeforeReading(this RouteHandlerBuilder route)
    {
        route.Add(endpoint =>
        {
            var handler = endpoint.RequestDelegate!;
            endpoint.RequestDelegate = async context =>
            {
                var clientId = context.User.GetClientId();
                var admission = context.RequestServices.GetRequiredService<BatchAdmission>();
                var writer = context.RequestServices.GetRequiredService<LogBatchWriter>();
                RateLimitLease room;
                try
                {
                    room = await admission.WaitForRoomAsync(clientId, context.Request.ContentLength, context.RequestAborted);
                }
                catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
                {
                    // The client left while its batch waited: nobody to answer, nothing read, nothing to log.
                    return;
                }

                using var _ = room;
                var queue = room.IsAcquired ? writer.Peek(clientId) : EnqueueResult.ClientShareFull;
                if (queue != EnqueueResult.Queued)
                {
                    await Ingestion.Refusal(queue, context).ExecuteAsync(context);
                    return;
                }

                if (context.Request.HasJsonContentType() && !BatchPrepayment.IsUtf8(context.Request))
                {
                    await BatchPrepayment.UnsupportedCharset().ExecuteAsync(context);
                    return;
                }

                if (context.Features.Get<IRateLimitCharge>() is not { } budget || !context.Request.HasJsonContentType())
                {
                    await handler(context);
                    return;
                }

                PrepaidBatch batch;
                try
                {
                    // HTTP/1 only: an HTTP/2 stream waiting for the turn still receives its body into the connection's
                    // flow-control window without reading it, so waiting streams could stall the body of the one
                    // holding the turn, and every other stream of that connection.
                    using var turn = HttpProtocol.IsHttp2(context.Request.Protocol) || HttpProtocol.IsHttp3(context.Request.Protocol)
                        ? null
                        : await admission.WaitForReadingTurnAsync(clientId, context.RequestAborted);
                    if (turn is { IsAcquired: false })
                    {
                        await StillReading(context).ExecuteAsync(context);
                        return;
                    }

                    batch = await context.RequestServices.GetRequiredService<BatchPrepayment>().PayAsync(context, budget);
                }
                catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
                {
                    // The client left while its body waited or was being read: nothing taken, nobody to answer.
                    return;
                }

                using var _paid = batch;
                if (batch.Refusal is { } refusal)
                {
                    await refusal.ExecuteAsync(context);
                    return;
                }

                await handler(context);
            };
        });
        return route;
    }

    // The answer when another body of the client has held the reading turn for the whole patience.
    private static ProblemHttpResult StillReading(HttpContext http)
    {
        http.Response.Headers[HeaderNames.RetryAfter] = "1";
        return TypedResults.Problem(
            statusCode: StatusCodes.Status429TooManyRequests,
            title: "Another batch is still arriving.",
            detail: "This client's batch bodies are read one at a time, and an earlier one has been arriving for longer than "
                + "the ingest commit timeout; retry after a moment. Nothing of this request was read or stored.");
    }
}
