using System.Globalization;

namespace Tracker.ApiService.RateLimiting;

/// <summary>One policy's limit, as the Redis scripts and the in-memory fallback both apply it.</summary>
public abstract record RateLimitRule(string Policy)
{
    /// <summary>The <c>RateLimit-Policy</c> header value (draft-ietf-httpapi-ratelimit-headers): quota and window.</summary>
    public abstract string PolicyHeader { get; }

    /// <summary>How long a partition's state matters after its last request.</summary>
    public abstract TimeSpan StateLifetime { get; }
}

/// <summary>
/// A counter per window: the first request of a window starts it, and it ends <see cref="Window"/> later.
/// A busy partition's permits of the current window are taken from Redis ahead and held for at most
/// <see cref="LeaseLifetime"/>, and never past the window's end (see <see cref="TokenLease"/>); zero decides every
/// request by its own round trip.
/// </summary>
public sealed record FixedWindowRule(string Policy, int PermitLimit, TimeSpan Window, TimeSpan LeaseLifetime = default) : RateLimitRule(Policy)
{
    public override string PolicyHeader { get; } =
        string.Create(CultureInfo.InvariantCulture, $"\"{Policy}\";q={PermitLimit};w={(long)Window.TotalSeconds}");

    public override TimeSpan StateLifetime => Window;
}

/// <summary>
/// A bucket holding up to <see cref="BurstLimit"/> tokens, refilled continuously at <see cref="TokensPerSecond"/>; a
/// request spends one, and can be charged more (<see cref="IRateLimitCharge"/>). Advertised as a quota of the whole
/// burst over the time it takes to refill it (q=2000;w=2 for 1000/s, burst 2000).
/// A busy partition's tokens are taken from Redis ahead and held for at most <see cref="LeaseLifetime"/>, a slow
/// one's for <see cref="SlowKeyLeaseLifetime"/>, or for <see cref="QuietKeyLeaseLifetime"/> while Redis grants it
/// (see <see cref="TokenLease"/> and <see cref="LeaseLength"/>); zero decides every request by its own round trip,
/// and a slow or quiet lifetime no longer than the one before it is not used.
/// </summary>
public sealed record TokenBucketRule(
    string Policy, int BurstLimit, double TokensPerSecond, TimeSpan LeaseLifetime = default, TimeSpan SlowKeyLeaseLifetime = default,
    TimeSpan QuietKeyLeaseLifetime = default)
    : RateLimitRule(Policy)
{
    public override string PolicyHeader { get; } =
        string.Create(CultureInfo.InvariantCulture, $"\"{Policy}\";q={BurstLimit};w={Math.Max(1, (long)Math.Ceiling(BurstLimit / TokensPerSecond))}");

    public override TimeSpan StateLifetime => TimeSpan.FromSeconds(BurstLimit / TokensPerSecond);
}

/// <summary>The outcome of one request against one rule.</summary>
/// <param name="Allowed">Whether the request may proceed.</param>
/// <param name="Remaining">Requests (for a token bucket: tokens) still allowed now.</param>
/// <param name="ResetAfter">Until the quota is whole again (end of the window, or a full bucket).</param>
/// <param name="RetryAfter">For a refusal, until the request would be allowed.</param>
public sealed record RateDecision(bool Allowed, long Remaining, TimeSpan ResetAfter, TimeSpan RetryAfter)
{
    /// <summary>Tokens Redis granted beyond the request's cost, for this instance to hold for the partition's next requests.</summary>
    public int Held { get; init; }

    /// <summary>
    /// The period held tokens belong to, as Redis names it, handed back with them: for a fixed window, the window's
    /// end in Redis's milliseconds (permits go back only to the window they came from); zero for a token bucket.
    /// </summary>
    public long Period { get; init; }

    /// <summary>How long the held tokens were granted for: what the request asked, or a shorter lease Redis chose.</summary>
    public LeaseLength Lease { get; init; }

    /// <summary>The <c>RateLimit</c> header value: remaining quota and seconds until it resets.</summary>
    public string Header(RateLimitRule rule) =>
        string.Create(CultureInfo.InvariantCulture, $"\"{rule.Policy}\";r={Remaining};t={(long)Math.Ceiling(ResetAfter.TotalSeconds)}");
}
