using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Options;
using Tracker.ApiService.Storage;

namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// Turns away a client IP that keeps failing API-key authentication, so guessing keys gets nowhere and costs no
/// lookups. Failures are counted per <see cref="ClientPartition"/> in a fixed window, in Redis so every instance
/// adds to one count (in this instance's memory while Redis is unreachable); successes are not counted. Once the
/// count reaches the limit, the IP is blocked in memory until the window ends, so a blocked request is refused
/// synchronously, before any cache or database lookup and without a Redis round trip. Another instance learns of
/// the block from the shared count at the first failure it sees from that IP.
/// </summary>
public sealed class FailedAuthenticationLimit
{
    /// <summary>The rule's name in Redis keys, headers and metrics.</summary>
    public const string Policy = "auth-failures";

    // Blocks are swept once there are this many, so the table holds only IPs blocked recently.
    private const int SweepThreshold = 10_000;

    private readonly bool _enabled;
    private readonly FixedWindowRule _rule;
    private readonly string _keyPrefix;
    private readonly PolicyDecisions _decisions;
    private readonly RateLimitingMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, long> _blockedUntil = new();

    public FailedAuthenticationLimit(
        IOptions<RateLimitingOptions> options, RedisRateStore store, LocalRateStore local, RedisAvailability redis,
        RateLimitingMetrics metrics, TimeProvider time)
    {
        var configured = options.Value;
        _enabled = configured.Enabled;
        _rule = new FixedWindowRule(Policy, configured.AuthFailures.PermitLimit, TimeSpan.FromSeconds(configured.AuthFailures.WindowSeconds));
        _keyPrefix = configured.KeyPrefix + Policy + ":";
        _decisions = new PolicyDecisions(_rule, store, local, redis, metrics);
        _metrics = metrics;
        _time = time;
    }

    /// <summary>Whether <paramref name="address"/> has failed too often; if so, <paramref name="retryAfter"/> says until when.</summary>
    public bool IsBlocked(IPAddress? address, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        if (!_enabled || _blockedUntil.IsEmpty)
        {
            return false;
        }

        var partition = ClientPartition.Of(address);
        if (!_blockedUntil.TryGetValue(partition, out var until))
        {
            return false;
        }

        var now = _time.GetTimestamp();
        if (now >= until)
        {
            _blockedUntil.TryRemove(new KeyValuePair<string, long>(partition, until));
            return false;
        }

        retryAfter = _time.GetElapsedTime(now, until);
        return true;
    }

    /// <summary>
    /// Counts a request from a blocked address that was turned away. Not every request from one is: a key already
    /// in the caches is still let through (<see cref="IsBlocked"/> only says the address is blocked).
    /// </summary>
    public void TurnedAway() => _metrics.Decided(Policy, allowed: false, DecisionStore.Block);

    /// <summary>
    /// Counts a failed authentication from <paramref name="address"/>. Returns the refusal when this failure is
    /// already over the limit (the IP was blocked elsewhere first), null otherwise.
    /// </summary>
    public async ValueTask<RateDecision?> RecordFailureAsync(IPAddress? address)
    {
        if (!_enabled)
        {
            return null;
        }

        var (decision, store) = await _decisions.DecideAsync(_keyPrefix + ClientPartition.Of(address), TokenRequest.OneToken);
        _decisions.Count(decision, store);

        // The failure that reaches the limit blocks the next request; one past it (counted by other instances
        // first) is refused itself.
        if (decision.Remaining == 0)
        {
            Block(ClientPartition.Of(address), decision.ResetAfter);
        }

        return decision.Allowed ? null : decision;
    }

    private void Block(string partition, TimeSpan until)
    {
        var now = _time.GetTimestamp();
        if (_blockedUntil.Count >= SweepThreshold)
        {
            foreach (var (expired, blockedUntil) in _blockedUntil)
            {
                if (now >= blockedUntil)
                {
                    _blockedUntil.TryRemove(new KeyValuePair<string, long>(expired, blockedUntil));
                }
            }
        }

        _blockedUntil[partition] = now + (long)(until.TotalSeconds * _time.TimestampFrequency);
    }
}
