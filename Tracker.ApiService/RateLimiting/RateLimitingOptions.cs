using System.ComponentModel.DataAnnotations;

namespace Tracker.ApiService.RateLimiting;

/// <summary>Rate limits (<c>RateLimiting</c> section). Defaults are the contract's; benchmarks set them high.</summary>
public sealed class RateLimitingOptions
{
    public const string SectionName = "RateLimiting";

    /// <summary>Off, no endpoint is limited: only for measuring the limiter's cost, or behind a gateway that limits.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Prefix of the limiters' keys in Redis; instances that share it share their limits.</summary>
    [Required]
    [MinLength(1)]
    public string KeyPrefix { get; set; } = "tracker:rate:";

    /// <summary>Registration and login, per client IP.</summary>
    [Required]
    public FixedWindowLimit Auth { get; set; } = new() { PermitLimit = 10, WindowSeconds = 60 };

    /// <summary>
    /// Failed API-key authentications per client IP (per /64 for IPv6); past it, the IP's API-key requests are
    /// refused until the window ends, before any lookup. Successes do not count.
    /// </summary>
    [Required]
    public FixedWindowLimit AuthFailures { get; set; } = new() { PermitLimit = 30, WindowSeconds = 60 };

    /// <summary>Analytics and key management, per client.</summary>
    [Required]
    public LeasedFixedWindowLimit Usage { get; set; } = new() { PermitLimit = 60, WindowSeconds = 60 };

    /// <summary>
    /// Ingest, per API key, counted in logs: a log costs one token (a batch of N logs, N), and so does a request that
    /// carries none (<c>GET /api/v1/keys/current</c>). The defaults keep one key near 1% of the writer's measured
    /// capacity (docs/performance.md) and let it send five maximum-size batches at once.
    /// </summary>
    [Required]
    public TokenBucketLimit Ingest { get; set; } = new() { TokensPerSecond = 2000, BurstLimit = 5000 };
}

/// <summary>At most <see cref="PermitLimit"/> requests in each window of <see cref="WindowSeconds"/>.</summary>
public class FixedWindowLimit
{
    [Range(1, int.MaxValue)]
    public int PermitLimit { get; set; }

    [Range(1, 86_400)]
    public int WindowSeconds { get; set; }
}

/// <summary>A fixed window whose permits an instance may take from Redis ahead of a busy partition's requests.</summary>
public sealed class LeasedFixedWindowLimit : FixedWindowLimit
{
    /// <summary>
    /// How long an instance may hold permits of a busy client's current window taken from Redis ahead of its
    /// requests (never past the window's end); 0 decides every request by its own round trip.
    /// </summary>
    [Range(0, 60_000)]
    public int LeaseMilliseconds { get; set; } = 1000;
}

/// <summary>A bucket of <see cref="BurstLimit"/> tokens refilled at <see cref="TokensPerSecond"/>.</summary>
public sealed class TokenBucketLimit
{
    [Range(0.001, 1_000_000_000)]
    public double TokensPerSecond { get; set; }

    [Range(1, int.MaxValue)]
    public int BurstLimit { get; set; }

    /// <summary>
    /// How long an instance may hold tokens of a busy key taken from Redis ahead of its requests; 0 decides every
    /// request by its own round trip.
    /// </summary>
    [Range(0, 10_000)]
    public int LeaseMilliseconds { get; set; } = 100;

    /// <summary>
    /// How long an instance may hold tokens of a slow key (one that spends fewer than four tokens in
    /// <see cref="LeaseMilliseconds"/>), so that its next requests find them; 0 treats it as any other key (and turns
    /// quiet-key leases off). Longer costs burst headroom on every instance that serves the key (README); keys sending
    /// a request every second or two are served by <see cref="QuietKeyLeaseMilliseconds"/> instead.
    /// </summary>
    [Range(0, 60_000)]
    public int SlowKeyLeaseMilliseconds { get; set; } = 5000;

    /// <summary>
    /// How long an instance may hold tokens of a slow key while the key is quiet: Redis grants this lease only while the
    /// key's quiet leases, all instances together, count at most an eighth of its burst as held, and the slow-key lease
    /// past that. Saves the round trips of keys sending a request every second or two (docs/performance.md, runs 57–60);
    /// 0, or no longer than <see cref="SlowKeyLeaseMilliseconds"/>, turns it off.
    /// </summary>
    [Range(0, 300_000)]
    public int QuietKeyLeaseMilliseconds { get; set; } = 30_000;
}
