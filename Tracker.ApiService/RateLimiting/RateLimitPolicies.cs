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
