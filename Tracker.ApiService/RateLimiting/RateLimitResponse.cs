using Tracker.ApiService.Http;

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

        if (rule is TokenBucketRule)
        {
            // A token bucket's request can be charged more once its body is read, and may then end in an exception
            // (a malformed batch): its headers are kept through the exception handler, to say what it spent.
            KeptResponseHeaders.Set(http, "RateLimit-Policy", rule.PolicyHeader);
            KeptResponseHeaders.Set(http, "RateLimit", decision.Header(rule));
            http.Features.Set(charge);
            return;
        }

        http.Response.Headers["RateLimit-Policy"] = rule.PolicyHeader;
        http.Response.Headers["RateLimit"] = decision.Header(rule);
    }
}
