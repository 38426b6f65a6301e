namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// Tokens of one partition's bucket that this instance took from Redis ahead of the requests that spend them, so
/// that a busy API key is decided in memory, synchronously, instead of by one Redis round trip per request (on two
/// cores the asynchronous decision cost a quarter of single-event ingest throughput: docs/performance.md).
/// </summary>
/// <remarks>
/// Never over-admits: every token spent here was first taken from the shared bucket. The price is bounded
/// under-admission across instances: tokens held here cannot be spent by another instance. An instance holds at
/// most an eighth of the burst (<see cref="MaxTokens"/>), Redis grants at most half of what a bucket has left, and
/// unspent tokens are dropped <see cref="TokenBucketRule.LeaseLifetime"/> after the fetch that brought them started.
/// Redis counts held tokens against the burst for that long, so they never add to a bucket that refilled meanwhile. A fetch asks for what the
/// key's recent rate would spend in one lifetime, so a key with a request now and then asks for one token: it is
/// decided exactly, as without leases. Thread-safe.
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
    /// Spends one held token. <paramref name="newRequest"/> counts the request towards the key's demand (a request
    /// retried here after Redis refused it is not counted twice). When the tokens run low, <paramref name="refill"/>
    /// is how many a fetch should ask for now; the caller must fetch and then call <see cref="Complete"/>.
    /// </summary>
    /// <param name="bucketLeft">The bucket's tokens as this instance sees them: Redis's at the last fetch plus those held.</param>
    public bool TryTake(bool newRequest, out long bucketLeft, out int refill)
    {
        lock (_gate)
        {
            var now = time.GetTimestamp();
            _demand += newRequest ? 1 : 0;
            DropIfExpired(now);
            refill = 0;
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
            if (newRequest && !_fetching && _tokens + _olderTokens <= _lastGrant / 4)
            {
                refill = StartFetch(now);
            }

            return true;
        }
    }

    /// <summary>
    /// For a request that found no token: how many it should ask Redis for, its own included. Zero means a fetch
    /// is already in flight, so this request asks for its own token only and must not call <see cref="Complete"/>.
    /// </summary>
    public int BeginFetch()
    {
        lock (_gate)
        {
            return _fetching ? 0 : StartFetch(time.GetTimestamp());
        }
    }

    /// <summary>
    /// Ends the fetch that <see cref="TryTake"/> or <see cref="BeginFetch"/> started: keeps <paramref name="tokens"/>
    /// (none when Redis refused or failed) and returns how many are held now.
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
                // From the fetch's start, which is before Redis granted them: Redis counts them against the burst for
                // a lifetime from its grant, so they are always gone from here before Redis stops counting them.
                _expiresAt = _fetchStartedAt + _lifetimeTicks;
                _bucketLeftAtFetch = bucketLeft;
            }

            return _tokens + _olderTokens;
        }
    }

    private int StartFetch(long now)
    {
        _fetching = true;
        _fetchStartedAt = now;
        var window = Math.Max(now - _demandSince, _lifetimeTicks / ShortestDemandWindowPerLifetime);
        var want = window <= 0 ? 1 : (int)Math.Min(MaxTokens, Math.Ceiling(_demand * (double)_lifetimeTicks / window));
        _demand = 0;
        _demandSince = now;
        return Math.Clamp(want, 1, MaxTokens);
    }

    private void DropIfExpired(long now)
    {
        if (_olderTokens > 0 && now >= _olderExpiresAt)
        {
            _olderTokens = 0;
        }

        if (_tokens > 0 && now >= _expiresAt)
        {
            _tokens = 0;
        }
    }
}
