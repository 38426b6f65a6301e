using System.Collections.Concurrent;

namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// The same rules applied in this instance's memory, used while Redis is unreachable: limits then hold per
/// instance instead of across them, and nothing fails open. Entries whose window or refill has passed are swept,
/// so the table holds only partitions seen recently.
/// </summary>
public sealed class LocalRateStore(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, State> _states = new();
    private long _nextSweep;

    /// <summary>Decides one request of <paramref name="key"/>; against a token bucket it spends <paramref name="cost"/> tokens or none.</summary>
    public RateDecision Decide(RateLimitRule rule, string key, int cost = 1)
    {
        var now = time.GetTimestamp();
        SweepIfDue(now);
        var state = _states.GetOrAdd(key, static _ => new State());
        lock (state)
        {
            switch (rule)
            {
                case FixedWindowRule window:
                    if (state.Count == 0 || now >= state.Until)
                    {
                        state.Count = 0;
                        state.Until = now + (long)(window.Window.TotalSeconds * time.TimestampFrequency);
                    }

                    state.Count++;
                    return RateMath.FixedWindow(state.Count <= window.PermitLimit, window.PermitLimit - state.Count, time.GetElapsedTime(now, state.Until));

                case TokenBucketRule bucket:
                    if (state.Until == 0)
                    {
                        state.Tokens = bucket.BurstLimit;
                        state.Until = now;
                    }

                    state.Tokens = Math.Min(bucket.BurstLimit, state.Tokens + time.GetElapsedTime(state.Until, now).TotalSeconds * bucket.TokensPerSecond);
                    state.Until = now;
                    var allowed = state.Tokens >= cost;
                    state.Tokens -= allowed ? cost : 0;
                    state.Expires = now + (long)((bucket.BurstLimit / bucket.TokensPerSecond + 1) * time.TimestampFrequency);
                    return RateMath.TokenBucket(bucket, allowed, state.Tokens, cost);

                default:
                    throw new ArgumentOutOfRangeException(nameof(rule), rule, "Unknown rate limit rule.");
            }
        }
    }

    private void SweepIfDue(long now)
    {
        var due = Interlocked.Read(ref _nextSweep);
        if (now < due || Interlocked.CompareExchange(ref _nextSweep, now + time.TimestampFrequency * 10, due) != due)
        {
            return;
        }

        foreach (var (key, state) in _states)
        {
            if (now >= Math.Max(state.Until, state.Expires))
            {
                _states.TryRemove(key, out _);
            }
        }
    }

    private sealed class State
    {
        public long Count;
        public double Tokens;

        /// <summary>Fixed window: when it ends. Token bucket: when it was last refilled.</summary>
        public long Until;

        /// <summary>Token bucket: when it is full again with no further requests, so forgetting it changes nothing.</summary>
        public long Expires;
    }
}
