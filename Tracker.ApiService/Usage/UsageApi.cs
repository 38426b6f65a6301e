using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Tracker.ApiService.Auth;
using Tracker.ApiService.Http;
using Tracker.ApiService.RateLimiting;

namespace Tracker.ApiService.Usage;

/// <summary><c>/api/v1/usages</c>: the caller's daily counts and the busiest clients, authenticated with a JWT.</summary>
public static class UsageApi
{
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

        return routes;
    }

    private static async Task<Results<Ok<Envelope<IReadOnlyList<DailyCount>>>, ValidationProblem>> DailyAsync(
        ClaimsPrincipal user, UsageStatistics statistics, CancellationToken cancellationToken, int? days = null)
    {
        var errors = new Dictionary<string, string[]>();
        var window = InRange(errors, "days", days ?? 7, UsageQueries.MaxDays);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors, detail: "The query was not accepted; see errors.");
        }

        var counts = await statistics.DailyAsync(user.GetClientId(), window, cancellationToken);
        return TypedResults.Ok(Envelope.Of("Daily usage statistics retrieved successfully", counts));
    }

    private static async Task<Results<Ok<Envelope<IReadOnlyList<TopClient>>>, ValidationProblem>> TopAsync(
        UsageStatistics statistics, CancellationToken cancellationToken, int? hours = null, int? limit = null)
    {
        var errors = new Dictionary<string, string[]>();
        var window = InRange(errors, "hours", hours ?? 24, UsageQueries.MaxHours);
        var count = InRange(errors, "limit", limit ?? 3, UsageQueries.MaxLimit);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors, detail: "The query was not accepted; see errors.");
        }

        var top = await statistics.TopAsync(window, count, cancellationToken);
        return TypedResults.Ok(Envelope.Of("Top clients retrieved successfully", top));
    }

    private static int InRange(Dictionary<string, string[]> errors, string name, int value, int maximum)
    {
        if (value < 1 || value > maximum)
        {
            errors[name] = [$"Must be an integer from 1 to {maximum}."];
        }

        return value;
    }
}
