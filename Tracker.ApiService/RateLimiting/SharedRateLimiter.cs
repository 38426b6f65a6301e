using System.Threading.RateLimiting;

namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// The limiter of one partition (one IP, client or API key) of one policy, as ASP.NET Core's rate-limiting
/// middleware uses it: decisions come from Redis while it is reachable and from this instance's memory while it is
/// not. Each decision also sets the <c>RateLimit-Policy</c> and <c>RateLimit</c> headers on the current response,
/// because the middleware gives no other place that sees both the lease and the response of an allowed request.
/// A busy token-bucket partition spends tokens taken from Redis ahead (<see cref="TokenLease"/>), decided here
/// synchronously with no round trip.
/// </summary>
internal sealed class SharedRateLimiter(RateLimitRule rule, string key, RedisDecisionBatcher redisDecisions, RateLimitingServices services)
    : RateLimiter
{
    private readonly TokenLease? _lease = rule is TokenBucketRule { LeaseLifetime.Ticks: > 0 } bucket ? new TokenLease(bucket, services.Time) : null;
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

    // The middleware tries this synchronous path first and, when it is refused, waits for the asynchronous one. It
    // decides here only when a held token can be spent; everything else is decided once, in AcquireAsyncCore.
    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        if (_lease is null || !services.Redis.IsAvailable || !_lease.TryTake(out var bucketLeft, out var refill))
        {
            return DecisionLease.Deferred;
        }

        if (!refill.IsNone)
        {
            _ = RefillAsync(refill);
        }

        return SpendHeldToken(bucketLeft);
    }

    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        if (services.Redis.IsAvailable)
        {
            // None: no lease, or a fetch is already in flight; this request then asks for its own token only.
            var fetch = _lease?.BeginFetch() ?? LeaseFetch.None;
            var decision = fetch.IsNone ? await redisDecisions.DecideAsync(key) : await FetchAsync(fetch);
            if (decision is not null)
            {
                services.Metrics.UsingRedis(rule.Policy);
                if (!fetch.IsNone)
                {
                    var held = _lease!.Complete(decision.Allowed ? decision.LeasedTokens : 0, decision.Remaining);
                    decision = decision with { Remaining = decision.Remaining + held };
                }

                return Decide(decision, "redis");
            }
        }

        services.Metrics.UsingFallback(rule.Policy);
        return Decide(services.Local.Decide(rule, key), "memory");
    }

    // Fetches the next tokens while the last held ones are being spent, so that a busy key rarely waits for Redis.
    // Nothing awaits it: Redis failing ends it with null, and anything else would be a bug of the shared batcher,
    // which the requests deciding through it report as well.
    private async Task RefillAsync(LeaseFetch fetch)
    {
        if (await FetchAsync(fetch) is { } decision)
        {
            _lease!.Complete(decision.Allowed ? 1 + decision.LeasedTokens : 0, decision.Remaining);
        }
    }

    // Redis's decision, or null when it failed; a fetch that did not reach Redis is abandoned, so its tokens to
    // hand back go with the next one.
    private async Task<RateDecision?> FetchAsync(LeaseFetch fetch)
    {
        RateDecision? decision = null;
        try
        {
            decision = await redisDecisions.DecideAsync(key, fetch);
            return decision;
        }
        finally
        {
            if (decision is null && !fetch.IsNone)
            {
                _lease!.Abandon(fetch);
            }
        }
    }

    private DecisionLease SpendHeldToken(long bucketLeft) =>
        Decide(RateMath.TokenBucket((TokenBucketRule)rule, allowed: true, bucketLeft), "lease");

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
