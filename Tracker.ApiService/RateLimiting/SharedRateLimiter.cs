using System.Threading.RateLimiting;

namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// The limiter of one partition (one IP, client or API key) of one policy, as ASP.NET Core's rate-limiting
/// middleware uses it: decisions come from Redis while it is reachable and from this instance's memory while it is
/// not. Each decision also sets the <c>RateLimit-Policy</c> and <c>RateLimit</c> headers on the current response,
/// because the middleware gives no other place that sees both the lease and the response of an allowed request.
/// </summary>
internal sealed class SharedRateLimiter(RateLimitRule rule, string key, RedisDecisionBatcher redisDecisions, RateLimitingServices services)
    : RateLimiter
{
    private long _lastUsed = services.Time.GetTimestamp();

    // Reported idle only once the window (or refill) has passed, so the middleware's cleanup of idle partitions
    // never forgets state that still limits.
    public override TimeSpan? IdleDuration
    {
        get
        {
            var idle = services.Time.GetElapsedTime(Interlocked.Read(ref _lastUsed)) - RateLimitingServices.StateLifetime(rule);
            return idle > TimeSpan.Zero ? idle : TimeSpan.Zero;
        }
    }

    public override RateLimiterStatistics? GetStatistics() => null;

    // Every decision is made once, in AcquireAsync: the middleware tries this synchronous path first and, when it
    // is refused, waits for the asynchronous one.
    protected override RateLimitLease AttemptAcquireCore(int permitCount) => DecisionLease.Deferred;

    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        if (services.Redis.IsAvailable && await redisDecisions.DecideAsync(key) is { } decision)
        {
            services.Metrics.UsingRedis(rule.Policy);
            return Decide(decision, "redis");
        }

        services.Metrics.UsingFallback(rule.Policy);
        return Decide(services.Local.Decide(rule, key), "memory");
    }

    private DecisionLease Decide(RateDecision decision, string store)
    {
        Interlocked.Exchange(ref _lastUsed, services.Time.GetTimestamp());
        services.Metrics.Decided(rule.Policy, decision.Allowed, store);
        if (services.HttpContexts.HttpContext is { } http)
        {
            http.Response.Headers["RateLimit-Policy"] = rule.PolicyHeader;
            http.Response.Headers["RateLimit"] = decision.Header(rule);
        }

        return new DecisionLease(decision, rule);
    }
}

/// <summary>A lease carrying its decision; the refusal handler reads Retry-After and the policy from it.</summary>
internal sealed class DecisionLease(RateDecision? decision, RateLimitRule? rule) : RateLimitLease
{
    /// <summary>"Not decided here": the synchronous attempt defers to the asynchronous one.</summary>
    public static readonly DecisionLease Deferred = new(null, null);

    public RateDecision? Decision => decision;

    public RateLimitRule? Rule => rule;

    public override bool IsAcquired => decision?.Allowed ?? false;

    public override IEnumerable<string> MetadataNames => decision is null ? [] : [MetadataName.RetryAfter.Name];

    public override bool TryGetMetadata(string metadataName, out object? metadata)
    {
        metadata = decision is not null && metadataName == MetadataName.RetryAfter.Name ? decision.RetryAfter : null;
        return metadata is not null;
    }
}
