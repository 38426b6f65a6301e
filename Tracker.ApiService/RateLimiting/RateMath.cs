namespace Tracker.ApiService.RateLimiting;

/// <summary>Turns the state after one request into a decision; shared by the Redis and the in-memory stores.</summary>
public static class RateMath
{
    /// <summary><paramref name="count"/> requests so far in a window that ends in <paramref name="windowLeft"/>, this one included.</summary>
    public static RateDecision FixedWindow(FixedWindowRule rule, long count, TimeSpan windowLeft)
    {
        var allowed = count <= rule.PermitLimit;
        return new RateDecision(allowed, Math.Max(0, rule.PermitLimit - count), windowLeft, allowed ? TimeSpan.Zero : windowLeft);
    }

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
