using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Tracker.ApiService.Auth;
using Tracker.ApiService.Http;
using Tracker.ApiService.RateLimiting;

namespace Tracker.ApiService.Usage;

/// <summary>
/// <c>/api/v1/usages</c> (the caller's daily counts, busiest endpoints and series, and the busiest clients) and
/// <c>/api/v1/keys/{id}/usage</c>, authenticated with a JWT.
/// </summary>
public static class UsageApi
{
    public const int MaxSeriesDays = 90;
    public const int MaxHourlySeriesDays = 14;

    public static IEndpointRouteBuilder MapUsageApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/usages").WithTags("Usage analytics").RequireAuthorization(AuthPolicies.Client)
            .RequireTrackerRateLimiting(RateLimitPolicies.Usage);

        group.MapGet("/daily", DailyAsync)
            .WithName("GetDailyUsage")
            .WithSummary("Your requests per UTC day")
            .WithDescription($"The last `days` UTC calendar days including today (1–{UsageQueries.MaxDays}, default 7), oldest first, "
                + "every day present (0 when there were none), by the logs' own timestamps. "
                + "A log acknowledged with 201 shows here within the configured freshness (2 s by default) on every instance.");

        group.MapGet("/top", TopAsync)
            .WithName("GetTopClients")
            .WithSummary("The busiest clients")
            .WithDescription($"Clients with the most requests in the current UTC hour and the `hours` - 1 before it (1–{UsageQueries.MaxHours}, "
                + $"default 24), at most `limit` of them (1–{UsageQueries.MaxLimit}, default 3), ties by clientId ascending, emails masked.");

        group.MapGet("/endpoints", EndpointsAsync)
            .WithName("GetEndpointUsage")
            .WithSummary("Your busiest endpoints")
            .WithDescription($"Your endpoints (method and normalised path: id-like segments as {{id}}, no query) with the most requests in the current "
                + $"UTC hour and the `hours` - 1 before it (1–{UsageQueries.MaxHours}, default 24), at most `limit` of them (1–{UsageQueries.MaxLimit}, "
                + "default 20), with their 4xx and 5xx counts and their median, 95th and 99th percentile durations in milliseconds (within 1%; "
                + "null when no log carried a duration). Read from hourly rollups, never the logs; fresh as `daily`.");

        group.MapGet("/series", SeriesAsync)
            .WithName("GetUsageSeries")
            .WithSummary("Your requests over time, by endpoint, status or key")
            .WithDescription($"Counts per `granularity` (hour or day, default day) bucket of the last `days` calendar days including today "
                + $"(1–{MaxSeriesDays} for days, 1–{MaxHourlySeriesDays} for hours, default 7) of the IANA time zone `tz` (default UTC): days run from "
                + "local midnight to local midnight (23 or 25 hours across a DST change). Zero-filled. `groupBy` (endpoint, status or key) draws a "
                + $"line per group, the `limit` busiest (1–{UsageBreakdownQueries.MaxSeriesGroups}, default 10); without it, one line, `total`. "
                + "`percentiles=true` adds each bucket's p50/p95/p99 duration in milliseconds (within 1%). A zone whose offset is not whole hours "
                + "in the window is refused: the rollups are hourly.");

        var keys = routes.MapGroup("/api/v1/keys").WithTags("Usage analytics").RequireAuthorization(AuthPolicies.Client)
            .RequireTrackerRateLimiting(RateLimitPolicies.Usage);
        keys.MapGet("/{id:guid}/usage", KeyUsageAsync)
            .WithName("GetApiKeyUsage")
            .WithSummary("One of your keys' requests per UTC day")
            .WithDescription($"The last `days` UTC days including today (1–{UsageQueries.MaxDays}, default 30), oldest first, zero-filled: the logs "
                + "sent with this key. 404 for a key that is not yours.")
            .ProducesProblem(StatusCodes.Status404NotFound);

        return routes;
    }

    private static async Task<Results<SerializedOk<Envelope<IReadOnlyList<DailyCount>>>, ValidationProblem>> DailyAsync(
        ClaimsPrincipal user, UsageStatistics statistics, CancellationToken cancellationToken, int? days = null)
    {
        var query = new QueryValidation();
        var window = query.InRange("days", days ?? 7, UsageQueries.MaxDays);
        if (query.Problem is { } problem)
        {
            return problem;
        }

        return await statistics.DailyAsync(user.GetClientId(), window, cancellationToken);
    }

    private static async Task<Results<SerializedOk<Envelope<IReadOnlyList<TopClient>>>, ValidationProblem>> TopAsync(
        UsageStatistics statistics, CancellationToken cancellationToken, int? hours = null, int? limit = null)
    {
        var query = new QueryValidation();
        var window = query.InRange("hours", hours ?? 24, UsageQueries.MaxHours);
        var count = query.InRange("limit", limit ?? 3, UsageQueries.MaxLimit);
        if (query.Problem is { } problem)
        {
            return problem;
        }

        return await statistics.TopAsync(window, count, cancellationToken);
    }

    private static async Task<Results<SerializedOk<Envelope<IReadOnlyList<EndpointUsage>>>, ValidationProblem>> EndpointsAsync(
        ClaimsPrincipal user, UsageBreakdowns breakdowns, CancellationToken cancellationToken, int? hours = null, int? limit = null)
    {
        var query = new QueryValidation();
        var window = query.InRange("hours", hours ?? 24, UsageQueries.MaxHours);
        var count = query.InRange("limit", limit ?? 20, UsageQueries.MaxLimit);
        if (query.Problem is { } problem)
        {
            return problem;
        }

        return await breakdowns.EndpointsAsync(user.GetClientId(), window, count, cancellationToken);
    }

    private static async Task<Results<SerializedOk<Envelope<UsageSeries>>, ValidationProblem>> SeriesAsync(
        ClaimsPrincipal user, UsageBreakdowns breakdowns, TimeProvider time, CancellationToken cancellationToken,
        string? granularity = null, int? days = null, string? groupBy = null, string? tz = null, bool? percentiles = null, int? limit = null)
    {
        var query = new QueryValidation();
        var buckets = query.Choice("granularity", granularity, SeriesGranularity.Day, SeriesGranularity.Hour, SeriesGranularity.Day);
        var grouping = query.Choice("groupBy", groupBy, SeriesGrouping.None, SeriesGrouping.Endpoint, SeriesGrouping.Status, SeriesGrouping.Key);
        var window = query.InRange("days", days ?? 7, buckets == SeriesGranularity.Hour ? MaxHourlySeriesDays : MaxSeriesDays);
        var lines = query.InRange("limit", limit ?? 10, UsageBreakdownQueries.MaxSeriesGroups);
        var timeZone = query.TimeZone("tz", tz ?? "UTC");
        SeriesWindow? series = null;
        if (query.IsValid)
        {
            series = SeriesWindow.Create(timeZone!, buckets, window, time.GetUtcNow());
            if (series is null)
            {
                query.Refuse("tz", $"{timeZone!.Id}'s offset from UTC is not a whole number of hours in this window; usage is kept per UTC hour, so its days cannot be cut exactly.");
            }
        }

        if (query.Problem is { } problem)
        {
            return problem;
        }

        return await breakdowns.SeriesAsync(user.GetClientId(), series!, grouping, percentiles ?? false, lines, cancellationToken);
    }

    private static async Task<Results<SerializedOk<Envelope<IReadOnlyList<DailyCount>>>, ValidationProblem, ProblemHttpResult>> KeyUsageAsync(
        Guid id, ClaimsPrincipal user, UsageBreakdowns breakdowns, CancellationToken cancellationToken, int? days = null)
    {
        var query = new QueryValidation();
        var window = query.InRange("days", days ?? 30, UsageQueries.MaxDays);
        if (query.Problem is { } problem)
        {
            return problem;
        }

        if (await breakdowns.KeyDailyAsync(user.GetClientId(), id, window, cancellationToken) is { } counts)
        {
            return counts;
        }

        return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "API key not found.", detail: $"You have no API key with id {id}.");
    }
}
