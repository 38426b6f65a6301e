namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// A partition whose tokens (a token bucket's) or permits (a fixed window's) this instance takes from Redis ahead of
/// its requests (<see cref="TokenLease"/>): a request the held tokens pay is decided synchronously, with no round
/// trip; any other pays in Redis, fetching the next tokens to hold on the way. While Redis is unreachable nothing is held and every
/// request is decided in memory, as without a lease.
/// </summary>
internal sealed class LeasedRateLimiter(RateLimitRule rule, string key, PolicyDecisions decisions, RateLimitResponse response, TimeProvider time)
    : PartitionRateLimiter(key, decisions, response, time)
{
    private readonly TokenLease _lease = new(rule, time);

    protected override RateDecision? TryDecideAtOnce(int cost)
    {
        if (!Decisions.RedisIsAvailable || !_lease.TryTake(cost, out var decision, out var refill))
        {
            return null;
        }

        if (refill is not null)
        {
            // Nothing awaits it: Redis failing abandons it, and anything else would be a bug of the shared batcher,
            // which the requests deciding through it report as well.
            _ = FetchAsync(refill);
        }

        return decision;
    }

    protected override async ValueTask<(RateDecision Decision, DecisionStore Store)> DecideAsync(int cost)
    {
        // No fetch: Redis is unreachable, or another fetch is in flight and this request pays its own cost only.
        if (!Decisions.RedisIsAvailable || _lease.BeginFetch(cost) is not { } fetch)
        {
            var (own, store) = await base.DecideAsync(cost);
            if (store == DecisionStore.Redis)
            {
                _lease.Observe(own);
            }

            return (own, store);
        }

        return await FetchAsync(fetch) is { } decision
            ? (decision, DecisionStore.Redis)
            : (Decisions.InMemory(Key, cost), DecisionStore.Memory);
    }

    // Redis's decision, with what this instance holds after it counted as remaining; null when Redis failed.
    private async Task<RateDecision?> FetchAsync(LeaseFetch fetch)
    {
        RateDecision? decision = null;
        try
        {
            decision = await Decisions.InRedisAsync(Key, fetch.Request);
        }
        finally
        {
            if (decision is null)
            {
                fetch.Abandon();
            }
        }

        return decision is null ? null : decision with { Remaining = decision.Remaining + fetch.Complete(decision) };
    }
}
