using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Tracker.ApiService.Auth;
using Tracker.ApiService.Http;
using Tracker.ApiService.RateLimiting;

namespace Tracker.ApiService.Ingest;

/// <summary><c>POST /api/v1/logs</c> and <c>POST /api/v1/logs/batch</c>, authenticated with an API key.</summary>
public static class IngestApi
{
    public static IEndpointRouteBuilder MapIngestApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/logs").WithTags("Activity logs").RequireAuthorization(AuthPolicies.Ingest)
            .RequireTrackerRateLimiting(RateLimitPolicies.Ingest);

        group.MapPost("/", PostLogAsync)
            .WithName("CreateLog")
            .WithSummary("Record one API call")
            .WithDescription("201 only once the log is committed to PostgreSQL (requests arriving together share one write). "
                + "503 with Retry-After when it cannot be committed in time; then nothing of it was stored, unless the title says "
                + "\"Logs may or may not be stored.\" (the connection to the database died during the commit).")
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        group.MapPost("/batch", PostBatchAsync)
            .WithName("CreateLogs")
            .WithSummary("Record many API calls at once")
            .WithDescription("1 to 1000 logs (configurable). Validation is all or nothing, and so is the write: 201 once every log is committed. "
                + "A log with an id already stored (same id and timestamp) is not stored again: the answer says how many logs were stored and how many were duplicates.")
            .WithMetadata(new BatchRequestBodyLimit())
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        return routes;
    }

    private static async Task<Results<Created<Envelope<object?>>, Accepted<Envelope<object?>>, ValidationProblem, ProblemHttpResult>> PostLogAsync(
        LogRequest request, ClaimsPrincipal user, LogValidator validator, LogBatchWriter writer, IOptions<IngestOptions> options,
        IngestMetrics metrics, HttpContext http)
    {
        var errors = new Dictionary<string, string[]>();
        if (!validator.TryConvert(request, user.GetClientId(), user.GetApiKeyId(), string.Empty, errors, out var record))
        {
            metrics.Rejected(1, "invalid");
            return TypedResults.ValidationProblem(errors, detail: "The log was not accepted; see errors.");
        }

        var result = await WriteAsync([record], writer, options.Value, metrics, http);
        if (result.Problem is { } problem)
        {
            return problem;
        }

        return result.Queued
            ? TypedResults.Accepted((string?)null, Envelope.Of<object?>("Log queued successfully", null))
            : TypedResults.Created((string?)null, Envelope.Of<object?>("Log created successfully", null));
    }

    private static async Task<Results<Created<Envelope<BatchAccepted>>, Accepted<Envelope<BatchAccepted>>, ValidationProblem, ProblemHttpResult>> PostBatchAsync(
        LogBatchRequest request, ClaimsPrincipal user, LogValidator validator, LogBatchWriter writer, IOptions<IngestOptions> options,
        IngestMetrics metrics, HttpContext http)
    {
        var maxLogs = options.Value.MaxLogsPerBatchRequest;
        if (request.Logs is not { Length: > 0 } logs || logs.Length > maxLogs)
        {
            metrics.Rejected(request.Logs?.Length ?? 0, "invalid");
            return TypedResults.ValidationProblem(
                new Dictionary<string, string[]> { ["logs"] = [$"logs must hold 1 to {maxLogs} logs."] },
                detail: "The batch was not accepted; see errors.");
        }

        var clientId = user.GetClientId();
        var apiKeyId = user.GetApiKeyId();
        var errors = new Dictionary<string, string[]>();
        var records = new LogRecord[logs.Length];
        for (var index = 0; index < logs.Length; index++)
        {
            validator.TryConvert(logs[index], clientId, apiKeyId, $"logs[{index}].", errors, out records[index]);
        }

        if (errors.Count > 0)
        {
            metrics.Rejected(logs.Length, "invalid");
            return TypedResults.ValidationProblem(errors, detail: "No log of the batch was accepted; see errors for each bad one.");
        }

        var result = await WriteAsync(records, writer, options.Value, metrics, http);
        if (result.Problem is { } problem)
        {
            return problem;
        }

        var accepted = result.Queued
            ? new BatchAccepted(records.Length, null, null)
            : new BatchAccepted(records.Length, records.Length - result.Duplicates, result.Duplicates);
        return result.Queued
            ? TypedResults.Accepted((string?)null, Envelope.Of("Logs queued successfully", accepted))
            : TypedResults.Created((string?)null, Envelope.Of("Logs created successfully", accepted));
    }

    /// <summary>Queues the logs and, unless the deployment acknowledges on queueing, waits for their commit.</summary>
    private static async Task<WriteResult> WriteAsync(
        LogRecord[] records, LogBatchWriter writer, IngestOptions options, IngestMetrics metrics, HttpContext http)
    {
        switch (writer.TryEnqueue(records, out var pending))
        {
            case EnqueueResult.QueueFull:
                metrics.Rejected(records.Length, "queue_full");
                return new(false, Unavailable(http, retryAfterSeconds: 1, "The ingest queue is full; retry after a moment."));
            case EnqueueResult.ShuttingDown:
                metrics.Rejected(records.Length, "shutting_down");
                return new(false, Unavailable(http, retryAfterSeconds: 5, "This instance is shutting down; retry, another instance will answer."));
        }

        if (options.Acknowledge == AcknowledgeMode.Queued)
        {
            return new(true, null);
        }

        var outcome = await pending!.Outcome;
        return new(false, outcome switch
        {
            WriteOutcome.Committed => null,
            WriteOutcome.TimedOut => Unavailable(http, retryAfterSeconds: 2,
                "The logs could not be committed in time (the database is unreachable); nothing of this request was stored."),
            WriteOutcome.Unknown => Unavailable(http, retryAfterSeconds: 2,
                "The connection to the database failed while the logs were being committed, and whether they were stored "
                + "could not be learned in time: they may have been. Retrying is safe for logs that carry an id (a stored one "
                + "is not stored again); a log without one may be stored twice.",
                title: "Logs may or may not be stored."),
            _ => TypedResults.Problem(
                statusCode: StatusCodes.Status422UnprocessableEntity,
                title: "The database refused the logs.",
                detail: "A log of this request breaks a storage rule (for example, a day outside the stored range); nothing of this request was stored, other requests were."),
        }, pending.Duplicates);
    }

    private readonly record struct WriteResult(bool Queued, ProblemHttpResult? Problem, int Duplicates = 0);

    private static ProblemHttpResult Unavailable(HttpContext http, int retryAfterSeconds, string detail, string title = "Logs not stored.")
    {
        http.Response.Headers[HeaderNames.RetryAfter] = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: title, detail: detail);
    }
}
