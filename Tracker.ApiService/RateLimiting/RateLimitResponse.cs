namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// Announces a decision on the current response: the <c>RateLimit-Policy</c> and <c>RateLimit</c> headers, and for a
/// token bucket the <see cref="IRateLimitCharge"/> feature. It reaches the response through the current request,
/// because the middleware gives a limiter no other place that sees both its decision and the response of an
/// allowed request.
/// </summary>
internal sealed class RateLimitResponse(IHttpContextAccessor httpContexts)
{
    public void Announce(RateLimitRule rule, RateDecision decision, IRateLimitCharge charge)
    {
        if (httpContexts.HttpContext is not { } http)
        {
            return;
        }

        http.Response.Headers["RateLimit-Policy"] = rule.PolicyHeader;
        http.Response.Headers["RateLimit"] = decision.Header(rule);
        if (rule is TokenBucketRule)
        {
            http.Features.Set(charge);
        }
    }
}
