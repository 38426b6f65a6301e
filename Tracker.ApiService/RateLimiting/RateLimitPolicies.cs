namespace Tracker.ApiService.RateLimiting;

/// <summary>The policy names endpoint groups pass to <c>RequireRateLimiting</c>.</summary>
public static class RateLimitPolicies
{
    /// <summary>Registration and login, per client IP.</summary>
    public const string Auth = "auth";

    /// <summary>Analytics and key management, per client.</summary>
    public const string Usage = "usage";

    /// <summary>Ingest, per API key.</summary>
    public const string Ingest = "ingest";
}

/// <summary>Applies a policy to an endpoint group and documents its refusal in the OpenAPI document.</summary>
public static class RateLimitingEndpointExtensions
{
    public static TBuilder RequireTrackerRateLimiting<TBuilder>(this TBuilder builder, string policy)
        where TBuilder : IEndpointConventionBuilder =>
        builder.RequireRateLimiting(policy)
            .WithMetadata(new ProducesResponseTypeMetadata(StatusCodes.Status429TooManyRequests, typeof(Microsoft.AspNetCore.Mvc.ProblemDetails), ["application/problem+json"]));
}
