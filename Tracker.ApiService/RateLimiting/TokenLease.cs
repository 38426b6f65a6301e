namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// Tokens of one partition's bucket that this instance took from Redis ahead of the requests that spend them, so
/// that a busy API key is decided in memory, synchronously, instead of by one Redis round trip per request (on two
/// cores the asynchronous decision cost a quarter of single-event ingest throughput: docs/performance.md).
/// </summary>
/// <remarks>
/// Never over-admits: every token spent here was first taken from the shared bucket, and Redis counts tokens
/// granted to be held against the burst for at least <see cref="TokenBucketRule.LeaseLifetime"/>, so they never add
/// to a bucket that refilled meanwhile. Held tokens are therefore spent only within a lifetime of the start of the
/// fetch that brought them (which is before Redis granted them); unspent ones are then handed back with the key's
/// next fetch. What remains is bounded under-admission across instances: tokens held here cannot be spent by
/// another instance, and an instance holds at most an eighth of the burst (<see cref="MaxTokens"/>), while Redis
/// grants at most half of what a bucket has left. A fetch asks for what the key's recent rate would spend in one
/// lifetime, so a key with a request now and then asks for one token: it is decided exactly, as without leases.
/// Thread-safe.
/// </remarks>
public sealed class TokenLease(TokenBucketRule rule, TimeProvider time)
{
    /// <summary>Demand is measured over at least this share of a lifetime, so one request does not read as a high rate.</summary>
    private const int ShortestDemandWindowPerLifetime = 10;

    private readonly Lock _gate = new();
    private readonly long _lifetimeTicks = (long)(rule.LeaseLifetime.TotalSeconds * time.TimestampFrequency);
    private int _tokens;
    private long _expiresAt;

    // What is left of earlier fetches when a new one arrives: spent first, and dropped at its own, earlier end.
    private int _olderTokens;
    private long _olderExpiresAt;

    // Dropped unspent, to be handed back to the bucket with the next fetch.
    private int _unspent;
    private long _bucketLeftAtFetch;
    private int _lastGrant;
    private int _demand;
    private long _demandSince = time.GetTimestamp();
    private bool _fetching;
    private long _fetchStartedAt;

    /// <summary>The most tokens this instance holds at once: an eighth of the burst, at least one.</summary>
    public int MaxTokens { get; } = Math.Max(1, rule.BurstLimit / 8);

    /// <summary>Tokens held now, unexpired.</summary>
    public int Tokens
    {
        get
        {
            lock (_gate)
            {
                DropIfExpired(time.GetTimestamp());
                return _tokens + _olderTokens;
            }
        }
    }

    /// <summary>
    /// Spends one held token for a request, which counts towards the key's demand either way. When the tokens run
    /// low, <paramref name="refill"/> is the fetch to send now; the caller must send it and then call
    /// <see cref="Complete"/> or <see cref="Abandon"/>. Otherwise it is <see cref="LeaseFetch.None"/>.
    /// </summary>
    /// <param name="bucketLeft">The bucket's tokens as this instance sees them: Redis's at the last fetch plus those held.</param>
    public bool TryTake(out long bucketLeft, out LeaseFetch refill)
    {
        lock (_gate)
        {
            var now = time.GetTimestamp();
            _demand++;
            DropIfExpired(now);
            refill = LeaseFetch.None;
            bucketLeft = 0;
            if (_tokens + _olderTokens == 0)
            {
                return false;
            }

            if (_olderTokens > 0)
            {
                _olderTokens--;
            }
            else
            {
                _tokens--;
            }

            bucketLeft = _bucketLeftAtFetch + _tokens + _olderTokens;
            // Fetched before the last quarter is spent, the next tokens usually arrive before a request must wait.
            if (!_fetching && _tokens + _olderTokens <= _lastGrant / 4)
            {
                refill = StartFetch(now) with { IsRefill = true };
            }

            return true;
        }
    }

    /// <summary>
    /// For a request that found no token: the fetch it should send, its own token included. <see cref="LeaseFetch.None"/>
    /// means a fetch is already in flight, so this request asks for its own token only and must not call
    /// <see cref="Complete"/> or <see cref="Abandon"/>.
    /// </summary>
    public LeaseFetch BeginFetch()
    {
        lock (_gate)
        {
            return _fetching ? LeaseFetch.None : StartFetch(time.GetTimestamp());
        }
    }

    /// <summary>
    /// Ends a fetch that Redis answered (the tokens it handed back are in the bucket again): keeps
    /// <paramref name="tokens"/> (none when Redis refused) and returns how many are held now.
    /// </summary>
    /// <param name="bucketLeft">What Redis had left after granting them.</param>
    public int Complete(int tokens, long bucketLeft)
    {
        lock (_gate)
        {
            var now = time.GetTimestamp();
            _fetching = false;
            DropIfExpired(now);
            if (tokens > 0)
            {
                if (_tokens > 0)
                {
                    _olderExpiresAt = _olderTokens > 0 ? _olderExpiresAt : _expiresAt;
                    _olderTokens += _tokens;
                }

                _tokens = tokens;
                _lastGrant = tokens;
                _expiresAt = _fetchStartedAt + _lifetimeTicks;
                _bucketLeftAtFetch = bucketLeft;
            }

            return _tokens + _olderTokens;
        }
    }

    /// <summary>Ends a fetch that did not reach Redis: what it was handing back is handed back with the next one.</summary>
    public void Abandon(LeaseFetch fetch)
    {
        lock (_gate)
        {
            _fetching = false;
            _unspent += fetch.Returned;
        }
    }

    private LeaseFetch StartFetch(long now)
    {
        DropIfExpired(now);
        _fetching = true;
        _fetchStartedAt = now;
        var window = Math.Max(now - _demandSince, _lifetimeTicks / ShortestDemandWindowPerLifetime);
        var want = window <= 0 ? 1 : (int)Math.Min(MaxTokens, Math.Ceiling(_demand * (double)_lifetimeTicks / window));
        _demand = 0;
        _demandSince = now;
        var fetch = new LeaseFetch(Math.Clamp(want, 1, MaxTokens), _unspent);
        _unspent = 0;
        return fetch;
    }

    private void DropIfExpired(long now)
    {
        if (_olderTokens > 0 && now >= _olderExpiresAt)
        {
            _unspent += _olderTokens;
            _olderTokens = 0;
        }

        if (_tokens > 0 && now >= _expiresAt)
        {
            _unspent += _tokens;
            _tokens = 0;
        }
    }
}

/// <summary>
/// One fetch of a key's tokens from Redis: how many it asks for (a request's own included, unless it is a refill
/// ahead of requests, whose tokens are all held) and how many unspent ones it hands back. <see cref="Tokens"/>
/// zero is no fetch.
/// </summary>
public readonly record struct LeaseFetch(int Tokens, int Returned, bool IsRefill = false)
{
    public static LeaseFetch None => default;

    public bool IsNone => Tokens == 0;
}
