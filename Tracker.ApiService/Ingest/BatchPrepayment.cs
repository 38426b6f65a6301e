using System.Buffers;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Tracker.ApiService.Auth;
using Tracker.ApiService.RateLimiting;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// Takes a batch's queue room and charges its logs to the key's ingest budget before its body is parsed: the body is
/// read into a pooled buffer, its logs are counted (<see cref="BatchLogCount"/>), room for them is reserved and they
/// are paid, in that order, as <see cref="Ingestion"/> does for a parsed request; only then is the body handed to
/// the binder. A batch the queue or the budget refuses has cost a count, not a parse and a validation of every log.
/// Batch bodies are UTF-8 (<see cref="IsUtf8"/>), so the count sees the bytes the binder parses.
/// </summary>
/// <remarks>
/// Measured with one tenant flooding maximum-size batches under the product's limits: the budget refused 99.6% of
/// them, yet each was read, parsed and validated first (about a megabyte, a thousand logs: 2.6–3.1 ms of API CPU per
/// request served), and the other tenant's p99 stayed at twice its goal. So a batch pays for the logs it holds,
/// valid or not: a flood of invalid batches spends its key's budget as a flood of valid ones does, instead of one
/// token per megabyte parsed.
/// </remarks>
public sealed class BatchPrepayment(LogBatchWriter writer, IOptions<IngestOptions> options)
{
    /// <summary>
    /// Whether the request's JSON body is UTF-8: no charset, or charset=utf-8. The binder would transcode another
    /// charset (utf-16, say) before parsing; JSON exchanged between systems must be UTF-8 (RFC 8259), and a body the
    /// count cannot read would be parsed before it pays, so the batch route answers others 415
    /// (<see cref="UnsupportedCharset"/>). Spelled exactly so: the binder fails on a quoted charset or on the alias
    /// "utf8" (a 500 before this check existed).
    /// </summary>
    public static bool IsUtf8(HttpRequest request) =>
        !MediaTypeHeaderValue.TryParse(request.ContentType, out var type)
        || type.Charset is not { Length: > 0 } charset
        || charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase);

    /// <summary>The answer to a batch body in another charset than UTF-8.</summary>
    public static ProblemHttpResult UnsupportedCharset() => TypedResults.Problem(
        statusCode: StatusCodes.Status415UnsupportedMediaType,
        title: "Unsupported charset.",
        detail: "A batch body must be JSON in UTF-8: send Content-Type: application/json without a charset, or with charset=utf-8.");

    /// <summary>
    /// Reads, counts, reserves and pays for the request's batch. The result is disposed when the request ends; when
    /// its <see cref="PrepaidBatch.Refusal"/> is set, that is the answer, with nothing parsed. Otherwise the request's
    /// body is the buffered one and the result is its <see cref="PrepaidBatch"/> feature (unless nothing could be
    /// counted: the binder will say why).
    /// </summary>
    public async Task<PrepaidBatch> PayAsync(HttpContext http, IRateLimitCharge budget)
    {
        var batch = await PrepaidBatch.ReadAsync(http.Request, http.RequestAborted);
        try
        {
            http.Request.Body = batch.AsStream();
            var counted = BatchLogCount.Count(batch.Body, out var stringBytes);
            var max = options.Value.MaxLogsPerBatchRequest;
            if (counted > max)
            {
                // Refused unparsed (binding a megabyte of empty logs costs more than a maximum batch), having paid for
                // the most a batch may hold.
                if (max > 1 && await budget.ChargeAsync(max - 1) is { Allowed: false } overdrawn)
                {
                    batch.Refusal = Ingestion.TooManyLogs(counted, overdrawn, http);
                    return batch;
                }

                http.RequestServices.GetRequiredService<IngestMetrics>().Rejected(counted, "invalid");
                batch.Refusal = IngestApi.LogsOutOfRange(max);
                return batch;
            }

            var logs = counted;
            if (logs == 0)
            {
                return batch;
            }

            var bytes = QueueBudget.EstimateBytes(logs, stringBytes, derivedIds: http.Request.Headers.ContainsKey(IdempotencyKeys.HeaderName));
            var reserved = writer.TryReserve(http.User.GetClientId(), logs, bytes, out var room);
            if (reserved != EnqueueResult.Queued)
            {
                batch.Refusal = Ingestion.Refusal(reserved, logs, http);
                return batch;
            }

            batch.Room = room;
            if (logs > 1 && await budget.ChargeAsync(logs - 1) is { Allowed: false } refusal)
            {
                batch.Refusal = Ingestion.TooManyLogs(logs, refusal, http);
                return batch;
            }

            batch.Logs = logs;
            http.Features.Set(batch);
            return batch;
        }
        catch
        {
            batch.Dispose();
            throw;
        }
    }
}

/// <summary>
/// A batch body read whole into a pooled buffer, with what was taken for it before it was parsed: room in the queue
/// and its logs' charge (<see cref="BatchPrepayment"/>). A request feature for <see cref="Ingestion"/>; disposing it
/// returns the buffer and the room not taken.
/// </summary>
public sealed class PrepaidBatch : IDisposable
{
    private static long s_buffered;

    private byte[]? _buffer;
    private readonly int _length;

    private PrepaidBatch(byte[] buffer, int length)
    {
        _buffer = buffer;
        _length = length;
    }

    /// <summary>The bytes this process's batch bodies hold in buffers now, read or being read.</summary>
    public static long BufferedBytes => Interlocked.Read(ref s_buffered);

    public ReadOnlySpan<byte> Body => _buffer.AsSpan(0, _length);

    /// <summary>How many logs the request's rate limit has been charged for, its own token included.</summary>
    public int Logs { get; internal set; } = 1;

    /// <summary>Set when the batch is refused before it is parsed (the queue, the budget, too many logs): the answer.</summary>
    public IResult? Refusal { get; internal set; }

    internal QueueReservation? Room { get; set; }

    /// <summary>
    /// The room reserved for the batch, for <paramref name="records"/> to be queued with, when it holds them (it
    /// does when they are the body's logs); null otherwise, and the room is given back.
    /// </summary>
    public QueueReservation? TakeRoom(LogRecord[] records)
    {
        var room = Room;
        Room = null;
        if (room is not null && !room.Holds(records))
        {
            room.Dispose();
            return null;
        }

        return room;
    }

    public Stream AsStream() => new MemoryStream(_buffer!, 0, _length, writable: false);

    public static async Task<PrepaidBatch> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        // Kestrel refuses a Content-Length over the body limit at the first read, and a longer body without one while
        // it is read: either throws the 413 the exception handler answers. So a declared length is never trusted
        // further than the limit.
        var limit = request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize ?? int.MaxValue;
        var expected = request.ContentLength is { } declared ? (int)Math.Clamp(declared, 0, Math.Min(limit, int.MaxValue)) : (int?)null;
        // Memory follows the bytes that arrived, not the length declared: a body declared and not sent holds 16 KiB.
        var buffer = Rent(Math.Max(1, Math.Min(expected ?? int.MaxValue, 16 * 1024)));
        var length = 0;
        try
        {
            while (length != expected)
            {
                if (length == buffer.Length)
                {
                    var larger = Rent(expected is { } whole ? Math.Min(whole, buffer.Length * 2) : buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(larger);
                    Return(buffer);
                    buffer = larger;
                }

                var read = await request.Body.ReadAsync(buffer.AsMemory(length), cancellationToken);
                if (read == 0)
                {
                    break;
                }

                length += read;
            }

            return new PrepaidBatch(buffer, length);
        }
        catch
        {
            Return(buffer);
            throw;
        }
    }

    public void Dispose()
    {
        Room?.Dispose();
        Room = null;
        if (Interlocked.Exchange(ref _buffer, null) is { } buffer)
        {
            Return(buffer);
        }
    }

    private static byte[] Rent(int bytes)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(bytes);
        Interlocked.Add(ref s_buffered, buffer.Length);
        return buffer;
    }

    private static void Return(byte[] buffer)
    {
        Interlocked.Add(ref s_buffered, -buffer.Length);
        ArrayPool<byte>.Shared.Return(buffer);
    }
}
