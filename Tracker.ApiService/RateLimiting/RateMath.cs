namespace Tracker.ApiService.RateLimiting;

/// <summary>Turns the state after one request into a decision; shared by the Redis and the in-memory stores.</summary>
public static class RateMath
{
    /// <summary><paramref name="left"/> permits left after this request, in a window that ends in <paramref name="windowLeft"/>.</summary>
    public static RateDecision FixedWindow(bool allowed, long left, TimeSpan windowLeft) =>
        new(allowed, Math.Max(0, left), windowLeft, allowed ? TimeSpan.Zero : windowLeft);

    /// <summary>
    /// <paramref name="tokensLeft"/> tokens in the bucket after this request took its <paramref name="cost"/>, if it
    /// was <paramref name="allowed"/>.
    /// </summary>
    public static RateDecision TokenBucket(TokenBucketRule rule, bool allowed, double tokensLeft, int cost = 1)
    {
        var untilFull = TimeSpan.FromSeconds((rule.BurstLimit - tokensLeft) / rule.TokensPerSecond);
        var untilNext = allowed ? TimeSpan.Zero : TimeSpan.FromSeconds((cost - tokensLeft) / rule.TokensPerSecond);
        return new RateDecision(allowed, (long)Math.Floor(tokensLeft), untilFull, untilNext);
    }
}
