using System.Diagnostics.CodeAnalysis;

namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// Tokens of one partition's bucket (or permits of its fixed window) that this instance took from Redis ahead of the
/// requests that spend them, so that a busy API key or client is decided in memory, synchronously, instead of by
/// one Redis round trip per request (on two cores the asynchronous decision cost a quarter of single-event ingest
/// throughput: docs/performance.md).
/// </summary>
/// <remarks>
/// The protocol: <see cref="TryTake"/> spends held tokens; a request they cannot pay gets a fetch from
/// <see cref="BeginFetch"/>, and <see cref="TryTake"/> hands out a refill fetch when the tokens run low. Each
/// <see cref="LeaseFetch"/> is sent to Redis and then settled exactly once; at most one is in flight.
/// <para>
/// Never over-admits: every token spent here was first taken from the shared bucket, and Redis counts tokens
/// granted to be held against the burst for at least the lifetime of the lease they were granted for
/// (<see cref="LeaseLength"/>), so they never add to a bucket that refilled meanwhile. Held tokens are therefore spent
/// only within that lifetime of the start of the fetch that brought them (which is before Redis granted them);
/// unspent ones are then handed back with the key's next fetch.
/// </para>
/// <para>
/// A fixed window's permits are the same, with the window for the bucket: Redis counts permits granted to be held
/// as taken, so all instances together never take more than the limit from a window. Held permits are spent only
/// within the window they were taken from: they end a lifetime after their fetch started or at the window's end as
/// Redis told it, counted from the same start, whichever is first. Unspent ones are handed back to their window
/// only (tagged with its <see cref="RateDecision.Period"/>; Redis ignores them once a later window has begun), and
/// an answer from a later window drops whatever is held of an earlier one.
/// </para>
/// <para>
/// A request that needs more than is held pays with what is held and the rest from Redis (or, refused,
/// keeps what it held). What remains is bounded under-admission across instances: tokens held here cannot be spent
/// by another instance, and an instance holds at most an eighth of the burst (<see cref="MaxTokens"/>), while Redis
/// grants at most half of what a bucket has left. A fetch asks for what the key's recent rate would spend in one
/// lifetime, so a key with a request now and then asks for its own tokens only: it is decided exactly, as without
/// leases. Thread-safe.
/// </para>
/// </remarks>
public sealed class TokenLease(RateLimitRule rule, TimeProvider time)
{
    /// <summary>How much earlier than Redis said a fixed window's held permits end here.</summary>
    private static readonly TimeSpan WindowEndMargin = TimeSpan.FromMilliseconds(10);

    /// <summary>Demand is measured over at least this share of a lifetime, so one request does not read as a high rate.</summary>
    private const int ShortestDemandWindowPerLifetime = 10;

    /// <summary>A key whose demand over a lifetime is fewer tokens is slow: it gets the slow-key lifetime.</summary>
    private const int SlowKeyTokens = 4;

    private readonly Lock _gate = new();
    private readonly long _lifetimeTicks = (long)(LeaseLifetime(rule).TotalSeconds * time.TimestampFrequency);
    private readonly long _slowKeyLifetimeTicks = rule is TokenBucketRule bucket
        ? (long)(bucket.SlowKeyLeaseLifetime.TotalSeconds * time.TimestampFrequency)
        : 0;
    private readonly long _quietKeyLifetimeTicks = rule is TokenBucketRule quiet
        ? (long)(quiet.QuietKeyLeaseLifetime.TotalSeconds * time.TimestampFrequency)
        : 0;
    private int _tokens;
    private long _expiresAt;

    // What is left of earlier fetches when a new one arrives: spent first, and dropped at its own, earlier end.
    private int _olderTokens;
    private long _olderExpiresAt;

    // Dropped unspent, to be handed back to the bucket with the next fetch.
    private int _unspent;

    // The period (fixed window) everything held and unspent was taken in; zero for a token bucket.
    private long _period;

    // When the fixed window of the held permits ends, as the answer that brought them says: the decisions' reset.
    private long _periodEndsAt;
    private long _leftAtFetch;

    // The least Redis said was left of the window (or bucket) _observedPeriod names, in the answers to requests that
    // paid their own cost there while a fetch was in flight (see Observe); long.MaxValue when none since a fetch began.
    private long _leastObserved = long.MaxValue;
    private long _observedPeriod;
    private int _lastGrant;
    private long _demand;
    private long _demandSince = time.GetTimestamp();
    private LeaseFetch? _inFlight;

    /// <summary>The most tokens this instance holds at once: an eighth of the burst (or of a window's limit), at least one.</summary>
    public int MaxTokens { get; } = Math.Max(1, rule switch
    {
        TokenBucketRule bucket => bucket.BurstLimit,
        FixedWindowRule window => window.PermitLimit,
        _ => throw new ArgumentOutOfRangeException(nameof(rule), rule, "Unknown rate limit rule."),
    } / 8);

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
    /// Spends <paramref name="cost"/> held tokens, or none when fewer are held; the cost counts towards the key's
    /// demand either way. When the tokens run low, <paramref name="refill"/> is a fetch to send now, ahead of the
    /// requests that will need it; otherwise null.
    /// </summary>
    /// <param name="decision">
    /// The request's decision when it was paid: what is left as this instance sees it (Redis's at the last fetch
    /// plus those held) and when the bucket is full again or the window ends.
    /// </param>
    public bool TryTake(int cost, [NotNullWhen(true)] out RateDecision? decision, out LeaseFetch? refill)
    {
        lock (_gate)
        {
            var now = time.GetTimestamp();
            _demand += cost;
            DropIfExpired(now);
            refill = null;
            decision = null;
            if (_tokens + _olderTokens < cost)
            {
                return false;
            }

            var fromOlder = Math.Min(_olderTokens, cost);
            _olderTokens -= fromOlder;
            _tokens -= cost - fromOlder;
            var left = _leftAtFetch + _tokens + _olderTokens;
            decision = rule is TokenBucketRule bucket
                ? RateMath.TokenBucket(bucket, allowed: true, left)
                : RateMath.FixedWindow(allowed: true, left, time.GetElapsedTime(now, Math.Max(now, _periodEndsAt)));
            // Fetched before the last quarter is spent, the next tokens usually arrive before a request must wait.
            if (_inFlight is null && _tokens + _olderTokens <= _lastGrant / 4)
            {
                refill = StartFetch(now, cost: 0);
            }

            return true;
        }
    }

    /// <summary>
    /// For a request whose <paramref name="cost"/> the held tokens cannot pay: a fetch that pays it with every token
    /// held now and the rest from Redis, and asks for tokens to hold next. Null while another fetch is in flight:
    /// the request then pays its cost in Redis on its own.
    /// </summary>
    public LeaseFetch? BeginFetch(int cost)
    {
        lock (_gate)
        {
            if (_inFlight is not null)
            {
                return null;
            }

            var now = time.GetTimestamp();
            DropIfExpired(now);
            var paidFromHeld = Math.Min(cost, _tokens + _olderTokens);
            var fromOlder = Math.Min(_olderTokens, paidFromHeld);
            var paidExpiresAt = fromOlder > 0 ? _olderExpiresAt : _expiresAt;
            _olderTokens -= fromOlder;
            _tokens -= paidFromHeld - fromOlder;
            return StartFetch(now, cost, paidFromHeld, paidExpiresAt);
        }
    }

    internal int Complete(LeaseFetch fetch, RateDecision decision)
    {
        lock (_gate)
        {
            var now = time.GetTimestamp();
            _inFlight = null;
            if (!decision.Allowed)
            {
                KeepUnpaid(fetch, now);
            }

            if (IsLaterPeriod(decision.Period))
            {
                // A later window has begun in Redis, so the earlier one has ended: what is held of it is already
                // due to end here, and handing it back would add to the later window.
                _tokens = _olderTokens = _unspent = 0;
                _period = decision.Period;
            }

            _periodEndsAt = now + (long)(decision.ResetAfter.TotalSeconds * time.TimestampFrequency);
            DropIfExpired(now);
            if (decision.Held > 0)
            {
                if (_tokens > 0)
                {
                    // A slow key's tokens may outlive a busy key's fetched after them: merged, they end with the first.
                    _olderExpiresAt = _olderTokens > 0 ? Math.Min(_olderExpiresAt, _expiresAt) : _expiresAt;
                    _olderTokens += _tokens;
                }

                _tokens = decision.Held;
                _lastGrant = decision.Held;
                _expiresAt = fetch.StartedAt + HeldFor(fetch, decision);
                _leftAtFetch = _leastObserved != long.MaxValue && SamePeriod(decision.Period, _observedPeriod)
                    ? Math.Min(decision.Remaining, _leastObserved)
                    : decision.Remaining;
            }
            else
            {
                // Nothing granted (a nearly empty bucket): with the last grant's quarter as the mark, every request
                // spending what is still held would start another refill; the next starts when it is all spent.
                _lastGrant = 0;
            }

            return _tokens + _olderTokens;
        }
    }

    /// <summary>
    /// Notes what Redis left after a request that paid its own cost there while a fetch was in flight. That answer and
    /// the fetch's arrive in either order, and Redis may have run either first; what this instance reports as left is
    /// the least of them, so that a fetch answered after that request's round trip does not report its permit as still
    /// left. (Less is reported only after a hand-back that Redis ran between them, as a fetch in flight may already.)
    /// </summary>
    public void Observe(RateDecision decision)
    {
        lock (_gate)
        {
            if (_leastObserved != long.MaxValue && SamePeriod(decision.Period, _observedPeriod))
            {
                _leastObserved = Math.Min(_leastObserved, decision.Remaining);
            }
            else if (_leastObserved == long.MaxValue || decision.Period > _observedPeriod)
            {
                _observedPeriod = decision.Period;
                _leastObserved = decision.Remaining;
            }

            if (!IsLaterPeriod(decision.Period))
            {
                _leftAtFetch = Math.Min(_leftAtFetch, decision.Remaining);
            }
        }
    }

    internal void Abandon(LeaseFetch fetch)
    {
        lock (_gate)
        {
            _inFlight = null;
            KeepUnpaid(fetch, time.GetTimestamp());
        }
    }

    // Held tokens put towards a cost that was not paid are held again, at most until the earliest end of those
    // they came from (the older tokens end first).
    private void KeepUnpaid(LeaseFetch fetch, long now)
    {
        if (fetch.PaidFromHeld == 0)
        {
            return;
        }

        _olderExpiresAt = _olderTokens > 0 ? Math.Min(_olderExpiresAt, fetch.PaidExpiresAt) : fetch.PaidExpiresAt;
        _olderTokens += fetch.PaidFromHeld;
        DropIfExpired(now);
    }

    private LeaseFetch StartFetch(long now, int cost, int paidFromHeld = 0, long paidExpiresAt = 0)
    {
        DropIfExpired(now);
        var window = Math.Max(now - _demandSince, _lifetimeTicks / ShortestDemandWindowPerLifetime);
        var lifetime = _lifetimeTicks;
        var want = Wanted(lifetime, window);
        // A slow key (a few requests a second among many keys) would find its tokens expired by its next request and
        // wait for Redis every time; held for the longer slow-key lifetime, they are still there. That lends nothing
        // beyond the limit: Redis counts them against the burst for a slow-key lifetime after the grant (in windows
        // of that length, apart from the busy keys' short ones), so the bucket never refills over tokens held here,
        // and they are dropped here before that. What it costs is under-admission, bounded: a key is slow only while
        // it spends fewer than four tokens in a short lifetime, so it holds, and Redis counts against its burst, at
        // most what it spends in one to two slow-key lifetimes.
        // Longer still, the quiet-key lifetime saves the round trips of keys sending a request every second or two. Each
        // instance serving the key asks for it on its own, so Redis grants it only within a share of the burst (all
        // instances together) and the slow-key lifetime past that: the answer says which (RateDecision.Lease).
        var lease = LeaseLength.Busy;
        if (_slowKeyLifetimeTicks > lifetime && want < SlowKeyTokens)
        {
            (lease, lifetime) = _quietKeyLifetimeTicks > _slowKeyLifetimeTicks
                ? (LeaseLength.Quiet, _quietKeyLifetimeTicks)
                : (LeaseLength.Slow, _slowKeyLifetimeTicks);
            want = Wanted(lifetime, window);
        }

        _demand = 0;
        _demandSince = now;
        var hold = Math.Max(0, Math.Clamp(want, 1, MaxTokens) - cost);
        var request = new TokenRequest(cost - paidFromHeld, hold, _unspent, _period, lease);
        _inFlight = new LeaseFetch(this, now, lifetime, paidFromHeld, paidExpiresAt, request);
        _unspent = 0;
        _leastObserved = long.MaxValue;
        return _inFlight;
    }

    private int Wanted(long lifetime, long window) =>
        window <= 0 ? 1 : (int)Math.Min(MaxTokens, Math.Ceiling(_demand * (double)lifetime / window));

    // A window's permits are held for a lifetime at most, and never past the window's end: Redis measured what was
    // left of it after the fetch started, so counted from the start it ends here no later than in Redis, less the
    // margin by which Redis's millisecond clock (PTTL against a truncated time) may overstate it.
    // A token bucket's tokens are held for the lease Redis granted them for, which may be shorter than the one asked.
    private long HeldFor(LeaseFetch fetch, RateDecision decision) => rule is FixedWindowRule
        ? Math.Min(fetch.Lifetime, (long)((decision.ResetAfter - WindowEndMargin).TotalSeconds * time.TimestampFrequency))
        : Math.Min(fetch.Lifetime, decision.Lease switch
        {
            LeaseLength.Quiet => _quietKeyLifetimeTicks,
            LeaseLength.Slow => _slowKeyLifetimeTicks,
            _ => _lifetimeTicks,
        });

    // The script works a window's end out afresh on each call (its clock plus the key's PTTL), so the same window's
    // end comes back a millisecond or two apart; a later window ends at least a whole window later. Half a window
    // tells them apart, as the script does for permits handed back. A token bucket has no periods (always zero), nor
    // has a lease before its first answer.
    private bool IsLaterPeriod(long period) => _period != 0 ? !SamePeriod(period, _period) : period != _period;

    // Redis works a window's end out afresh on each call (its clock plus PTTL), so one window's ends differ by a few
    // milliseconds; a token bucket's period is always zero.
    private bool SamePeriod(long period, long other) => rule is FixedWindowRule window
        ? Math.Abs(period - other) < window.Window.TotalMilliseconds / 2
        : period == other;

    private static TimeSpan LeaseLifetime(RateLimitRule rule) => rule switch
    {
        TokenBucketRule bucket => bucket.LeaseLifetime,
        FixedWindowRule window => window.LeaseLifetime,
        _ => throw new ArgumentOutOfRangeException(nameof(rule), rule, "Unknown rate limit rule."),
    };

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
/// The fetch a <see cref="TokenLease"/> has in flight: the <see cref="Request"/> to send to Redis, then settled
/// exactly once — <see cref="Complete"/> with Redis's answer, or <see cref="Abandon"/> without one.
/// </summary>
public sealed class LeaseFetch
{
    private readonly TokenLease _lease;
    private int _settled;

    internal LeaseFetch(TokenLease lease, long startedAt, long lifetime, int paidFromHeld, long paidExpiresAt, TokenRequest request)
    {
        _lease = lease;
        StartedAt = startedAt;
        Lifetime = lifetime;
        PaidFromHeld = paidFromHeld;
        PaidExpiresAt = paidExpiresAt;
        Request = request;
    }

    /// <summary>
    /// What Redis is asked: the part of the request's cost that held tokens did not pay (zero for a refill ahead of
    /// requests), the tokens to hold, and those handed back.
    /// </summary>
    public TokenRequest Request { get; }

    /// <summary>The part of the request's cost paid with tokens the lease held; held again if the cost is not paid.</summary>
    public int PaidFromHeld { get; }

    internal long PaidExpiresAt { get; }

    /// <summary>When it started: granted tokens are held for a lifetime from here, since Redis granted them later.</summary>
    internal long StartedAt { get; }

    /// <summary>How long the tokens it brings are held, in timestamp ticks: a slow key's are held longer.</summary>
    internal long Lifetime { get; }

    /// <summary>Keeps the tokens Redis granted to hold (none when it refused) and returns how many are held now.</summary>
    public int Complete(RateDecision decision)
    {
        Settle();
        return _lease.Complete(this, decision);
    }

    /// <summary>
    /// Ends a fetch without Redis's answer. Its hand-back is forgotten, not sent again: Redis may have run the script
    /// and lost only the answer (a timeout), and handing the same tokens back twice could admit more than the limit.
    /// Held tokens it put towards the cost are held again (the request is then decided without them).
    /// </summary>
    public void Abandon()
    {
        Settle();
        _lease.Abandon(this);
    }

    private void Settle()
    {
        if (Interlocked.Exchange(ref _settled, 1) != 0)
        {
            throw new InvalidOperationException("A lease fetch is completed or abandoned once.");
        }
    }
}
