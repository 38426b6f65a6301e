using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Tracker.ApiService.Auth;
using Tracker.ApiService.Http;
using Tracker.ApiService.RateLimiting;

namespace Tracker.ApiService.Ingest;

/// <summary><c>POST /api/v1/logs</c> and <c>POST /api/v1/logs/batch</c>, authenticated with an API key.</summary>
public static class IngestApi
{
    private const string IdempotencyDescription =
        "An Idempotency-Key header makes the request safe to repeat: a repeat of a completed request gets the original answer "
        + "(with Idempotent-Replayed: true), a repeat while the first is in progress gets 409, the same key with other logs gets 422.";

    public static IEndpointRouteBuilder MapIngestApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/logs").WithTags("Activity logs").RequireAuthorization(AuthPolicies.Ingest)
            .RequireTrackerRateLimiting(RateLimitPolicies.Ingest);

        group.MapPost("/", PostLogAsync)
            .WithName("CreateLog")
            .WithSummary("Record one API call")
            .WithDescription("201 only once the log is committed to PostgreSQL (requests arriving together share one write). "
                + "503 with Retry-After when it cannot be committed in time; then nothing of it was stored, unless the title says "
                + "\"Logs may or may not be stored.\" (the connection to the database died during the commit). "
                + IdempotencyDescription)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status500InternalServerError)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        group.MapPost("/batch", PostBatchAsync)
            .WithName("CreateLogs")
            .WithSummary("Record many API calls at once")
            .WithDescription("1 to 1000 logs (configurable). Validation is all or nothing, and so is the write: 201 once every log is committed. "
                + "A log with an id already stored (same id and timestamp) is not stored again: the answer says how many logs were stored and how many were duplicates. "
                + "The body is UTF-8 JSON (another charset is a 415). "
                + "Each log costs one token of the key's ingest rate limit, paid before the batch is validated (an invalid batch spends its logs too): "
                + "a batch with more logs than it has left is a 429 (Retry-After says when it will hold them) and stores nothing. "
                + IdempotencyDescription)
            .WithMetadata(new BatchRequestBodyLimit())
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .AdmitByClientBeforeReading()
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status500InternalServerError)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        return routes;
    }

    private static async Task<Results<Created<Envelope<object?>>, Accepted<Envelope<object?>>, ValidationProblem, ProblemHttpResult>> PostLogAsync(
        LogRequest request, ClaimsPrincipal user, LogValidator validator, Ingestion ingestion, IngestMetrics metrics, HttpContext http)
    {
        var errors = new Dictionary<string, string[]>();
        if (!validator.TryConvert(request, user.GetClientId(), user.GetApiKeyId(), string.Empty, errors, out var record))
        {
            metrics.Rejected(1, "invalid");
            return TypedResults.ValidationProblem(errors, detail: "The log was not accepted; see errors.");
        }

        var (answer, problem) = await ingestion.IngestAsync(user.GetClientId(), "log", [record], http);
        if (problem is not null)
        {
            return problem;
        }

        return answer!.Status == StatusCodes.Status202Accepted
            ? TypedResults.Accepted((string?)null, Envelope.Of<object?>("Log queued successfully", null))
            : TypedResults.Created((string?)null, Envelope.Of<object?>("Log created successfully", null));
    }

    /// <summary>The answer to a batch without logs, or with more than <paramref name="maxLogs"/>.</summary>
    public static ValidationProblem LogsOutOfRange(int maxLogs) => TypedResults.ValidationProblem(
        new Dictionary<string, string[]> { ["logs"] = [$"logs must hold 1 to {maxLogs} logs."] },
        detail: "The batch was not accepted; see errors.");

    private static async Task<Results<Created<Envelope<BatchAccepted>>, Accepted<Envelope<BatchAccepted>>, ValidationProblem, ProblemHttpResult>> PostBatchAsync(
        LogBatchRequest request, ClaimsPrincipal user, LogValidator validator, Ingestion ingestion, IOptions<IngestOptions> options,
        IngestMetrics metrics, HttpContext http)
    {
        var maxLogs = options.Value.MaxLogsPerBatchRequest;
        if (request.Logs is not { Length: > 0 } logs || logs.Length > maxLogs)
        {
            metrics.Rejected(request.Logs?.Length ?? 0, "invalid");
            return LogsOutOfRange(maxLogs);
        }

        // A batch pays for its logs before they are validated: BatchPrepayment paid for them before the body was
        // parsed, counting them. What it could not count (nothing the binder reads whole, by BatchLogCountTests) is
        // paid here, so a body the count misread still pays before it costs a validation.
        var paid = http.Features.Get<PrepaidBatch>()?.Logs ?? 1;
        if (logs.Length > paid && http.Features.Get<IRateLimitCharge>() is { } budget
            && await budget.ChargeAsync(logs.Length - paid) is { Allowed: false } refusal)
        {
            return Ingestion.TooManyLogs(logs.Length, refusal, http);
        }

        var clientId = user.GetClientId();
        var apiKeyId = user.GetApiKeyId();
        var errors = new Dictionary<string, string[]>();
        var records = new LogRecord[logs.Length];
        for (var index = 0; index < logs.Length; index++)
        {
            if (validator.TryConvert(logs[index], clientId, apiKeyId, $"logs[{index}].", errors, out var record))
            {
                records[index] = record;
            }
        }

        if (errors.Count > 0)
        {
            metrics.Rejected(logs.Length, "invalid");
            return TypedResults.ValidationProblem(errors, detail: "No log of the batch was accepted; see errors for each bad one.");
        }

        var (answer, problem) = await ingestion.IngestAsync(clientId, "batch", records, http);
        if (problem is not null)
        {
            return problem;
        }

        var accepted = new BatchAccepted(answer!.Accepted, answer.Stored, answer.Duplicates);
        return answer.Status == StatusCodes.Status202Accepted
            ? TypedResults.Accepted((string?)null, Envelope.Of("Logs queued successfully", accepted))
            : TypedResults.Created((string?)null, Envelope.Of("Logs created successfully", accepted));
    }
}
