using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Tracker.ApiService.Http;
using Tracker.ApiService.RateLimiting;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// What both ingest routes do with validated logs: honour the request's <c>Idempotency-Key</c>, queue the logs, wait
/// for the writer's outcome (unless the deployment acknowledges on queueing) and turn it into the answer.
/// </summary>
public sealed class Ingestion(LogBatchWriter writer, IdempotencyKeys idempotency, IOptions<IngestOptions> options, IngestMetrics metrics)
{
    /// <summary>Set on an answer repeated for an <c>Idempotency-Key</c> instead of processing the request again.</summary>
    public const string ReplayedHeader = "Idempotent-Replayed";

    /// <summary>
    /// Stores <paramref name="records"/> and returns the answer to give, or the problem to answer instead.
    /// <paramref name="route"/> tells the routes apart, so one key cannot stand for a single log and a batch.
    /// </summary>
    public async Task<(StoredAnswer? Answer, ProblemHttpResult? Problem)> IngestAsync(
        Guid clientId, string route, LogRecord[] records, HttpContext http)
    {
        if (!IdempotencyKeys.TryRead(http.Request, out var key))
        {
            metrics.Rejected(records.Length, "invalid");
            return (null, TypedResults.Problem(
                statusCode: StatusCodes.Status400BadRequest,
                title: "Invalid Idempotency-Key header.",
                detail: $"{IdempotencyKeys.HeaderName} must be one value of 1 to {IdempotencyKeys.MaxLength} visible ASCII characters, optionally quoted (\"8e03978e-40d5-43e8-bc93-6894a57f9324\")."));
        }

        if (key is null)
        {
            return await WriteAsync(records, http);
        }

        var fingerprint = IdempotencyKeys.Fingerprint(route, records);
        for (var index = 0; index < records.Length; index++)
        {
            // The key's own ids make a repeat store nothing twice, whatever Redis remembers of the key.
            records[index] = records[index] with { Id = records[index].Id ?? IdempotencyKeys.DeriveLogId(key, index) };
        }

        await using var claim = await idempotency.ClaimAsync(clientId, key, fingerprint);
        switch (claim.State)
        {
            case IdempotencyState.Replay:
                http.Response.Headers[ReplayedHeader] = "true";
                return (claim.Answer, null);
            case IdempotencyState.InFlight:
                return (null, TypedResults.Problem(
                    statusCode: StatusCodes.Status409Conflict,
                    title: "A request with this Idempotency-Key is in progress.",
                    detail: "Wait for the first request's answer, or retry after a moment to get it."));
            case IdempotencyState.Mismatch:
                return (null, TypedResults.Problem(
                    statusCode: StatusCodes.Status422UnprocessableEntity,
                    title: "This Idempotency-Key was used for a different request.",
                    detail: "The same key must be sent with the same logs to the same route; use a new key for new logs."));
        }

        var (answer, problem) = await WriteAsync(records, http);
        if (answer is not null)
        {
            await claim.CompleteAsync(answer);
        }

        // Otherwise nothing was stored (or it is unknown, and the key's log ids make a retry safe): the claim is let
        // go when disposed, so a retry is processed anew.
        return (answer, problem);
    }

    private async Task<(StoredAnswer? Answer, ProblemHttpResult? Problem)> WriteAsync(LogRecord[] records, HttpContext http)
    {
        // A batch's logs are paid before this (BatchPrepayment takes the queue's room first, then the rate limit's
        // charge, so that a batch the queue refuses costs no logs: room is given back exactly when the request ends
        // unqueued, and tokens are never given back); a single log paid its one token to be admitted. A refund would
        // be sound only into the store that paid, once: this instance's lease, Redis (one more round trip, when the
        // queue is full, and a script that adds tokens) or this instance's memory during an outage (a refund landing
        // in Redis after it came back would add tokens nobody took from it).
        var reservation = http.Features.Get<PrepaidBatch>()?.TakeRoom(records);
        if (reservation is null)
        {
            var reserved = writer.TryReserve(records, out reservation);
            if (reserved != EnqueueResult.Queued)
            {
                return Refused(reserved, records.Length, http);
            }
        }

        using var room = reservation!;
        // Refused only when this instance began shutting down since the reservation.
        var queued = room.Enqueue(records, out var pending);
        if (queued != EnqueueResult.Queued)
        {
            return Refused(queued, records.Length, http);
        }

        if (options.Value.Acknowledge == AcknowledgeMode.Queued)
        {
            return (new StoredAnswer(StatusCodes.Status202Accepted, records.Length, null, null), null);
        }

        return await pending!.Outcome switch
        {
            WriteOutcome.Committed => (new StoredAnswer(
                StatusCodes.Status201Created, records.Length, records.Length - pending.Duplicates, pending.Duplicates), null),
            WriteOutcome.TimedOut => (null, Unavailable(http, retryAfterSeconds: 2,
                "The logs could not be committed in time (the database is unreachable); nothing of this request was stored.")),
            WriteOutcome.Unknown => (null, Unavailable(http, retryAfterSeconds: 2,
                "The connection to the database failed while the logs were being committed, and whether they were stored "
                + "could not be learned in time: they may have been. Retrying is safe for logs that carry an id, or with an "
                + "Idempotency-Key (a stored log is not stored again); a log without either may be stored twice.",
                title: "Logs may or may not be stored.")),
            WriteOutcome.Failed => (null, TypedResults.Problem(
                statusCode: StatusCodes.Status500InternalServerError,
                title: "The logs could not be stored.",
                detail: "Storing a log of this request met an internal error, which was logged; nothing of this request was stored, other requests were.")),
            _ => (null, TypedResults.Problem(
                statusCode: StatusCodes.Status422UnprocessableEntity,
                title: "The database refused the logs.",
                detail: "A log of this request breaks a storage rule (for example, a day outside the stored range); nothing of this request was stored, other requests were.")),
        };
    }

    /// <summary>The answer to a batch of <paramref name="logs"/> logs the key's ingest budget refused.</summary>
    public static ProblemHttpResult TooManyLogs(int logs, RateDecision refusal, HttpContext http)
    {
        http.RequestServices.GetRequiredService<IngestMetrics>().Rejected(logs, "rate_limited");
        var retryAfter = TooManyRequests.Seconds(refusal.RetryAfter);
        http.Response.Headers[HeaderNames.RetryAfter] = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.Problem(
            statusCode: StatusCodes.Status429TooManyRequests,
            title: "Too many logs.",
            detail: $"This batch of {logs} logs is more than the key's ingest rate limit has left (see the RateLimit header); "
                + $"retry after {retryAfter} s, or send fewer logs. Nothing of this request was stored.");
    }

    private static (StoredAnswer? Answer, ProblemHttpResult? Problem) Refused(EnqueueResult refused, int logs, HttpContext http) =>
        (null, Refusal(refused, logs, http));

    /// <summary>The answer to a request of <paramref name="logs"/> logs the queue refused, counted as rejected.</summary>
    public static ProblemHttpResult Refusal(EnqueueResult refused, int logs, HttpContext http)
    {
        http.RequestServices.GetRequiredService<IngestMetrics>().Rejected(logs, RejectionReason(refused));
        return Refusal(refused, http);
    }

    /// <summary>The answer to a request the queue refused (<paramref name="refused"/> is not <see cref="EnqueueResult.Queued"/>).</summary>
    public static ProblemHttpResult Refusal(EnqueueResult refused, HttpContext http)
    {
        switch (refused)
        {
            case EnqueueResult.QueueFull:
                return Unavailable(http, retryAfterSeconds: 1, "The ingest queue is full; retry after a moment.");
            case EnqueueResult.ClientShareFull:
                http.Response.Headers[HeaderNames.RetryAfter] = "1";
                return TypedResults.Problem(
                    statusCode: StatusCodes.Status429TooManyRequests,
                    title: "Too many logs waiting.",
                    detail: "This client already has its share of the ingest queue waiting to be written; retry after a moment. Nothing of this request was stored.");
            default:
                return Unavailable(http, retryAfterSeconds: 5, "This instance is shutting down; retry, another instance will answer.");
        }
    }

    /// <summary>The <c>reason</c> of <c>tracker.ingest.logs.rejected</c> for a refusal of the queue.</summary>
    public static string RejectionReason(EnqueueResult refused) => refused switch
    {
        EnqueueResult.QueueFull => "queue_full",
        EnqueueResult.ClientShareFull => "client_share_full",
        _ => "shutting_down",
    };

    private static ProblemHttpResult Unavailable(HttpContext http, int retryAfterSeconds, string detail, string title = "Logs not stored.")
    {
        http.Response.Headers[HeaderNames.RetryAfter] = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: title, detail: detail);
    }
}
