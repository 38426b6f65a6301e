using System.Globalization;
using System.Net;

namespace Tracker.Web.Api;

/// <summary>Turns the API's ProblemDetails (and its silence) into <see cref="ApiError"/> sentences.</summary>
internal static class ApiErrors
{
    public static readonly ApiError Unreachable = new(
        ApiErrorKind.Unreachable, "The Tracker API cannot be reached right now. Check your connection and try again in a moment.");

    public static async Task<ApiError> ReadAsync(HttpResponseMessage response, bool isSignIn, CancellationToken cancellationToken)
    {
        var problem = await ReadProblemAsync(response, cancellationToken);
        return response.StatusCode switch
        {
            HttpStatusCode.Unauthorized when isSignIn => new(ApiErrorKind.InvalidCredentials, "The email or the password is wrong."),
            HttpStatusCode.Unauthorized => new(ApiErrorKind.SessionExpired, "Your session has ended. Sign in again."),
            HttpStatusCode.TooManyRequests => new(
                ApiErrorKind.RateLimited, $"Too many requests in a short time. Wait {Seconds(RetryAfter(response))}, then try again."),
            HttpStatusCode.ServiceUnavailable => new(
                ApiErrorKind.Unavailable, $"Tracker is briefly unavailable. Try again in {Seconds(RetryAfter(response))}."),
            HttpStatusCode.BadRequest when problem?.Errors.Count > 0 => new(
                ApiErrorKind.Refused, "Some of what you entered was not accepted:", [.. problem.Errors.SelectMany(field => field.Value)]),
            HttpStatusCode.BadRequest or HttpStatusCode.Conflict or HttpStatusCode.NotFound => new(
                ApiErrorKind.Refused, Sentence(problem?.Detail ?? problem?.Title) ?? "The request was not accepted."),
            _ => new(
                ApiErrorKind.Unexpected,
                "Something went wrong on Tracker's side. Try again; if it keeps happening, report it with this reference: "
                + $"{TraceId(problem) ?? "none"}."),
        };
    }

    private static async Task<HttpValidationProblemDetails?> ReadProblemAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentType?.MediaType != "application/problem+json")
        {
            return null;
        }

        try
        {
            return await response.Content.ReadFromJsonAsync<HttpValidationProblemDetails>(cancellationToken);
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private static TimeSpan RetryAfter(HttpResponseMessage response)
    {
        var retryAfter = response.Headers.RetryAfter;
        var wait = retryAfter?.Delta ?? (retryAfter?.Date is { } date ? date - DateTimeOffset.UtcNow : TimeSpan.FromSeconds(5));
        return wait < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : wait;
    }

    private static string Seconds(TimeSpan wait)
    {
        var seconds = (int)Math.Ceiling(wait.TotalSeconds);
        return seconds == 1 ? "1 second" : string.Create(CultureInfo.InvariantCulture, $"{seconds} seconds");
    }

    private static string? Sentence(string? text) =>
        string.IsNullOrWhiteSpace(text) ? null : text.TrimEnd().EndsWith('.') ? text.Trim() : text.Trim() + ".";

    private static string? TraceId(HttpValidationProblemDetails? problem) =>
        problem?.Extensions.TryGetValue("traceId", out var traceId) == true ? traceId?.ToString() : null;
}
