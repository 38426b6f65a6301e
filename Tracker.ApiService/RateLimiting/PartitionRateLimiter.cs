using System.Threading.RateLimiting;

namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// The limiter of one partition (one IP, client or API key) of one policy, as ASP.NET Core's rate-limiting
/// middleware uses it: each request is decided by the policy's shared decisions (one Redis script, or memory while
/// Redis is unreachable) and announced on the response. A token-bucket request can be charged more once its
/// endpoint knows what it costs (<see cref="IRateLimitCharge"/>).
/// </summary>
internal class PartitionRateLimiter(string key, PolicyDecisions decisions, RateLimitResponse response, TimeProvider time)
    : RateLimiter, IRateLimitCharge
{
    private long _lastUsed = time.GetTimestamp();

    protected string Key => key;

    protected PolicyDecisions Decisions => decisions;

    // Reported idle only once the window (or refill) has passed, so the middleware's cleanup of idle partitions
    // never forgets state that still limits.
    public override TimeSpan? IdleDuration
    {
        get
        {
            var idle = time.GetElapsedTime(Interlocked.Read(ref _lastUsed)) - decisions.Rule.StateLifetime;
            return idle > TimeSpan.Zero ? idle : TimeSpan.Zero;
        }
    }

    public override RateLimiterStatistics? GetStatistics() => null;

    public async ValueTask<RateDecision> ChargeAsync(int tokens)
    {
        var (decision, store) = TryDecideAtOnce(tokens) is { } atOnce ? (atOnce, DecisionStore.Lease) : await DecideAsync(tokens);
        Announce(decision, store);
        return decision;
    }

    // The middleware tries this synchronous path first and, when it is refused, waits for the asynchronous one.
    protected override RateLimitLease AttemptAcquireCore(int permitCount) =>
        TryDecideAtOnce(cost: 1) is { } decision ? Announce(decision, DecisionStore.Lease) : DecisionLease.Deferred;

    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        var (decision, store) = await DecideAsync(cost: 1);
        return Announce(decision, store);
    }

    /// <summary>A decision made without waiting, or null: here none, every request is decided by the shared store.</summary>
    protected virtual RateDecision? TryDecideAtOnce(int cost) => null;

    protected virtual ValueTask<(RateDecision Decision, DecisionStore Store)> DecideAsync(int cost) =>
        decisions.DecideAsync(key, new TokenRequest(cost));

    private DecisionLease Announce(RateDecision decision, DecisionStore store)
    {
        Interlocked.Exchange(ref _lastUsed, time.GetTimestamp());
        decisions.Count(decision, store);
        response.Announce(decisions.Rule, decision, this);
        return new DecisionLease(decision, decisions.Rule);
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
