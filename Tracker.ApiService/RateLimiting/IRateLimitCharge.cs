namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// The token bucket that admitted the current request, as a request feature
/// (<c>HttpContext.Features.Get&lt;IRateLimitCharge&gt;()</c>; absent when the request was not limited). It is for
/// an endpoint that learns what a request costs only from its body: the middleware took one token to admit it, and
/// the endpoint charges the rest here before doing anything that cannot be undone (a batch of N logs: N − 1 more).
/// </summary>
public interface IRateLimitCharge
{
    /// <summary>
    /// Spends <paramref name="tokens"/> more of the request's bucket, all of them or none, and updates the
    /// response's <c>RateLimit</c> header to what is left.
    /// </summary>
    ValueTask<RateDecision> ChargeAsync(int tokens);
}
