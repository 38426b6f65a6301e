using Tracker.ApiService.Storage;

namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// One policy's decisions, for every partition of it: in Redis while it answers (batched by
/// <see cref="RedisDecisionBatcher"/>), in this instance's memory while it does not (<see cref="LocalRateStore"/>),
/// so limits hold per instance during an outage and nothing fails open. Counts each decision in telemetry.
/// </summary>
internal sealed class PolicyDecisions(
    RateLimitRule rule, RedisRateStore store, LocalRateStore local, RedisAvailability redis, RateLimitingMetrics metrics)
{
    private readonly RedisDecisionBatcher _batcher = new(rule, store, redis);

    public RateLimitRule Rule => rule;

    /// <summary>Whether Redis is to be asked at all; while it is not, every decision is made in memory.</summary>
    public bool RedisIsAvailable => redis.IsAvailable;

    /// <summary>Redis's decision, or this instance's while Redis is unreachable; <c>Store</c> says which.</summary>
    public async ValueTask<(RateDecision Decision, DecisionStore Store)> DecideAsync(string key, TokenRequest request) =>
        redis.IsAvailable && await InRedisAsync(key, request) is { } shared
            ? (shared, DecisionStore.Redis)
            : (InMemory(key, request.Cost), DecisionStore.Memory);

    /// <summary>Redis's decision, or null when Redis failed.</summary>
    public async Task<RateDecision?> InRedisAsync(string key, TokenRequest request)
    {
        var decision = await _batcher.DecideAsync(key, request);
        if (decision is not null)
        {
            metrics.UsingRedis(rule.Policy);
        }

        return decision;
    }

    /// <summary>This instance's decision, for while Redis is unreachable.</summary>
    public RateDecision InMemory(string key, int cost)
    {
        metrics.UsingFallback(rule.Policy);
        return local.Decide(rule, key, cost);
    }

    public void Count(RateDecision decision, DecisionStore store) => metrics.Decided(rule.Policy, decision.Allowed, store);
}
