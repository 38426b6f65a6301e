using System.Globalization;
using StackExchange.Redis;

namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// Rate decisions in Redis, shared by every instance. One call decides a batch of requests of one policy — one
/// request per key, in order, a key repeated as often as it has requests — in a single Lua script
/// (<c>Scripts/*.lua</c>): atomic (a burst of concurrent requests cannot slip between a read and a write) and one
/// round trip however many requests it decides. Time comes from Redis (<c>TIME</c>), never from the instances, so
/// their clock differences do not matter. On a Redis Cluster all keys of one call must share a hash slot: callers
/// group a batch by <see cref="HashSlot"/> when <see cref="IsCluster"/> (each decision touches its own key only).
/// </summary>
/// <remarks>
/// RedisRateLimiting was considered: it is atomic too, but it decides one request per round trip, passes each
/// instance's own clock into its scripts and has no answer when Redis is unreachable (the exception reaches the
/// caller), so a wrapper with a local fallback and header values would be needed around it anyway; these two
/// short scripts are simpler than that.
/// </remarks>
public sealed class RedisRateStore(IConnectionMultiplexer redis)
{
    private static readonly string FixedWindowScript = Script("fixed-window.lua");
    private static readonly string TokenBucketScript = Script("token-bucket.lua");

    private bool? _isCluster;

    /// <summary>
    /// Whether the Redis is a cluster, whose scripts may only touch keys of one hash slot. StackExchange.Redis finds
    /// out by itself on connecting (from any node's address); until it has, the answer is false and asked again.
    /// </summary>
    public bool IsCluster => _isCluster ?? DetectCluster();

    /// <summary>The hash slot of <paramref name="key"/> on a cluster.</summary>
    public int HashSlot(RedisKey key) => redis.HashSlot(key);

    private bool DetectCluster()
    {
        var connected = redis.GetServers().Where(server => server.IsConnected).ToArray();
        if (connected.Length == 0)
        {
            return false;
        }

        _isCluster = connected.Any(server => server.ServerType == ServerType.Cluster);
        return _isCluster.Value;
    }

    /// <summary>
    /// Decides <paramref name="requests"/> (aligned with <paramref name="keys"/>), in their order: each takes its
    /// permit or is refused, and what it was granted to hold, from which window, is <see cref="RateDecision.Held"/>
    /// and <see cref="RateDecision.Period"/>.
    /// </summary>
    public async Task<RateDecision[]> DecideAsync(FixedWindowRule rule, RedisKey[] keys, TokenRequest[] requests)
    {
        var arguments = new RedisValue[2 + 4 * keys.Length];
        arguments[0] = rule.PermitLimit;
        arguments[1] = (long)rule.Window.TotalMilliseconds;
        for (var index = 0; index < keys.Length; index++)
        {
            arguments[2 + 4 * index] = requests[index].Cost;
            arguments[3 + 4 * index] = requests[index].Hold;
            arguments[4 + 4 * index] = requests[index].Returned;
            arguments[5 + 4 * index] = requests[index].ReturnedPeriod;
        }

        var result = (RedisResult[])(await redis.GetDatabase().ScriptEvaluateAsync(FixedWindowScript, keys, arguments))!;
        var decisions = new RateDecision[keys.Length];
        for (var index = 0; index < keys.Length; index++)
        {
            var answer = 5 * index;
            decisions[index] = RateMath.FixedWindow((long)result[answer] == 1, (long)result[answer + 2], TimeSpan.FromMilliseconds((long)result[answer + 3]))
                with { Held = (int)(long)result[answer + 1], Period = (long)result[answer + 4] };
        }

        return decisions;
    }

    /// <summary>
    /// Decides <paramref name="requests"/> (aligned with <paramref name="keys"/>), in their order: each pays its
    /// cost whole or is refused, and what it was granted to hold is <see cref="RateDecision.Held"/>.
    /// </summary>
    public async Task<RateDecision[]> DecideAsync(TokenBucketRule rule, RedisKey[] keys, TokenRequest[] requests)
    {
        var arguments = new RedisValue[5 + 4 * keys.Length];
        arguments[0] = rule.BurstLimit;
        arguments[1] = (rule.TokensPerSecond / 1000).ToString("R", CultureInfo.InvariantCulture);
        arguments[2] = Milliseconds(rule.LeaseLifetime);
        arguments[3] = Milliseconds(rule.SlowKeyLeaseLifetime);
        arguments[4] = Milliseconds(rule.QuietKeyLeaseLifetime);
        for (var index = 0; index < keys.Length; index++)
        {
            arguments[5 + 4 * index] = requests[index].Cost;
            arguments[6 + 4 * index] = requests[index].Hold;
            arguments[7 + 4 * index] = requests[index].Returned;
            arguments[8 + 4 * index] = (int)requests[index].Lease;
        }

        var result = (RedisResult[])(await redis.GetDatabase().ScriptEvaluateAsync(TokenBucketScript, keys, arguments))!;
        var decisions = new RateDecision[keys.Length];
        for (var index = 0; index < keys.Length; index++)
        {
            var answer = 4 * index;
            var tokensLeft = double.Parse((string)result[answer + 2]!, CultureInfo.InvariantCulture);
            decisions[index] = RateMath.TokenBucket(rule, (long)result[answer] == 1, tokensLeft, requests[index].Cost)
                with { Held = (int)(long)result[answer + 1], Lease = (LeaseLength)(int)(long)result[answer + 3] };
        }

        return decisions;
    }

    private static long Milliseconds(TimeSpan lifetime) => (long)Math.Ceiling(lifetime.TotalMilliseconds);

    private static string Script(string name)
    {
        using var stream = typeof(RedisRateStore).Assembly.GetManifestResourceStream("RateLimiting." + name)
            ?? throw new InvalidOperationException($"The embedded script {name} is missing.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}

/// <summary>
/// One request against a token bucket or a fixed window: the tokens (permits) it spends now (all or none), those its
/// instance would hold for the partition's next requests, and held ones it hands back unspent, with the period they
/// were taken in (<see cref="RateDecision.Period"/>; see <see cref="TokenLease"/>), and how long the tokens held are
/// to be held (<see cref="Lease"/>; Redis may grant a shorter lease, <see cref="RateDecision.Lease"/>).
/// </summary>
public readonly record struct TokenRequest(int Cost, int Hold = 0, int Returned = 0, long ReturnedPeriod = 0, LeaseLength Lease = LeaseLength.Busy)
{
    /// <summary>One token, for one request, and nothing held.</summary>
    public static TokenRequest OneToken => new(1);
}

/// <summary>
/// How long an instance holds a token bucket's tokens granted ahead of requests, and so how long Redis counts them
/// against the burst: <see cref="TokenBucketRule.LeaseLifetime"/>, <see cref="TokenBucketRule.SlowKeyLeaseLifetime"/>
/// or <see cref="TokenBucketRule.QuietKeyLeaseLifetime"/>. A fixed window's permits are always <see cref="Busy"/>.
/// </summary>
public enum LeaseLength
{
    /// <summary>A key spending several tokens per lease: the shortest lease.</summary>
    Busy = 0,

    /// <summary>A key spending fewer than four tokens per busy lease.</summary>
    Slow = 1,

    /// <summary>
    /// A slow key, held longer still while the quiet leases of the key (all instances) count at most an eighth of its
    /// burst as held; past that share, Redis grants a slow key's lease instead.
    /// </summary>
    Quiet = 2,
}
