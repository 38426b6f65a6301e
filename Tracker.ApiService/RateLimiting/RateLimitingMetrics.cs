using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Tracker.ApiService.RateLimiting;

/// <summary>Rate-limiting telemetry (meter "Tracker.RateLimiting"): decisions and fallback activations.</summary>
public sealed class RateLimitingMetrics
{
    public const string Name = "Tracker.RateLimiting";

    private readonly Counter<long> _decisions;
    private readonly Counter<long> _fallbacks;
    private readonly ConcurrentDictionary<string, bool> _onFallback = new();

    public RateLimitingMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(Name);
        _decisions = meter.CreateCounter<long>("tracker.rate_limit.decisions", "{decision}",
            "Rate-limit decisions by policy, outcome (allowed, rejected) and store (redis; lease: a token taken from Redis ahead; memory while Redis is unreachable; block: a request turned away because its IP failed authentication too often).");
        _fallbacks = meter.CreateCounter<long>("tracker.rate_limit.fallback.activations", "{activation}",
            "Times a policy switched from Redis to per-instance limits in memory.");
    }

    public void Decided(string policy, bool allowed, DecisionStore store) => _decisions.Add(1,
        new KeyValuePair<string, object?>("policy", policy),
        new KeyValuePair<string, object?>("outcome", allowed ? "allowed" : "rejected"),
        new KeyValuePair<string, object?>("store", store.Name));

    public void UsingFallback(string policy)
    {
        if (_onFallback.TryGetValue(policy, out var already) && already)
        {
            return;
        }

        if (_onFallback.TryUpdate(policy, true, false) || _onFallback.TryAdd(policy, true))
        {
            _fallbacks.Add(1, new KeyValuePair<string, object?>("policy", policy));
        }
    }

    public void UsingRedis(string policy)
    {
        if (_onFallback.TryGetValue(policy, out var onFallback) && onFallback)
        {
            _onFallback.TryUpdate(policy, false, true);
        }
    }
}

/// <summary>What decided a request: the <c>store</c> of <c>tracker.rate_limit.decisions</c>.</summary>
public sealed record DecisionStore(string Name)
{
    /// <summary>Redis, in a round trip of the request's own or of a lease's fetch.</summary>
    public static readonly DecisionStore Redis = new("redis");

    /// <summary>A token this instance took from Redis ahead of the request.</summary>
    public static readonly DecisionStore Lease = new("lease");

    /// <summary>This instance's memory, while Redis is unreachable.</summary>
    public static readonly DecisionStore Memory = new("memory");

    /// <summary>A request turned away because its address failed authentication too often.</summary>
    public static readonly DecisionStore Block = new("block");
}
