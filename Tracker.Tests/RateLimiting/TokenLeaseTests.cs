using Microsoft.Extensions.Time.Testing;
using Tracker.ApiService.RateLimiting;

namespace Tracker.Tests.RateLimiting;

/// <summary>
/// How much of a busy key's bucket an instance takes ahead, how it spends it and when it lets it go; the clock is
/// faked. The Redis side (never more than half of what is left) is in <see cref="RedisRateStoreTests"/>.
/// </summary>
public sealed class TokenLeaseTests
{
    private static readonly TokenBucketRule Ingest = new("ingest", 2000, 1000, TimeSpan.FromMilliseconds(100));

    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void A_key_with_a_request_now_and_then_asks_for_its_own_token_only()
    {
        var lease = new TokenLease(Ingest, _time);
        for (var request = 0; request < 3; request++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            Assert.False(lease.TryTake(1, out _, out _));
            var fetch = Begin(lease, 1);
            Assert.Equal(new TokenRequest(1), fetch.Request);
            Assert.Equal(0, fetch.Complete(Granted(held: 0, bucketLeft: 1999)));
        }
    }

    [Fact]
    public void A_busy_key_asks_for_what_its_rate_spends_in_a_lifetime_up_to_an_eighth_of_the_burst()
    {
        var lease = new TokenLease(Ingest, _time);
        Assert.Equal(250, lease.MaxTokens);
        Assert.False(lease.TryTake(1, out _, out _));
        // One request reads as at most ten per lifetime: demand is measured over at least a tenth of one.
        Assert.Equal(10, Wanted(Begin(lease, 1)));

        Assert.Equal(100, FetchAfter(requests: 50, over: TimeSpan.FromMilliseconds(50)));
        Assert.Equal(250, FetchAfter(requests: 500, over: TimeSpan.FromMilliseconds(50)));
        Assert.Equal(1, FetchAfter(requests: 1, over: TimeSpan.FromMilliseconds(500)));

        int FetchAfter(int requests, TimeSpan over)
        {
            for (var request = 0; request < requests; request++)
            {
                Assert.False(lease.TryTake(1, out _, out _));
                _time.Advance(over / requests);
            }

            return Wanted(Begin(lease, 1));
        }

        static int Wanted(LeaseFetch fetch)
        {
            fetch.Complete(Granted(held: 0, bucketLeft: 0));
            return fetch.Request.Cost + fetch.Request.Hold;
        }
    }

    [Fact]
    public void Demand_counts_tokens_so_a_key_sending_batches_asks_for_what_its_logs_spend()
    {
        var lease = new TokenLease(Ingest, _time);
        // Five batches of 20 logs in 50 ms: 100 tokens, 200 per lifetime.
        for (var batch = 0; batch < 5; batch++)
        {
            Assert.False(lease.TryTake(20, out _, out _));
            _time.Advance(TimeSpan.FromMilliseconds(10));
        }

        var fetch = Begin(lease, 20);
        Assert.Equal(new TokenRequest(20, 180), fetch.Request);
    }

    [Fact]
    public void Held_tokens_are_spent_per_cost_and_the_next_fetch_starts_when_a_quarter_is_left()
    {
        var lease = new TokenLease(Ingest, _time);
        Assert.Equal(100, Begin(lease, 1).Complete(Granted(held: 100, bucketLeft: 1500)));

        for (var taken = 1; taken <= 72; taken++)
        {
            Assert.True(lease.TryTake(1, out var decision, out var refill));
            Assert.Equal(1500 + 100 - taken, decision.Remaining);
            Assert.Null(refill);
        }

        // A cost of two is paid from two held tokens at once; a cost beyond what is held takes none.
        Assert.True(lease.TryTake(2, out var afterTwo, out var noRefill));
        Assert.Equal(1500 + 26, afterTwo.Remaining);
        Assert.Null(noRefill);
        Assert.False(lease.TryTake(27, out _, out _));
        Assert.Equal(26, lease.Tokens);

        Assert.True(lease.TryTake(1, out _, out var refillAtAQuarter));
        Assert.NotNull(refillAtAQuarter);
        Assert.Equal(0, refillAtAQuarter.Request.Cost);
        Assert.InRange(refillAtAQuarter.Request.Hold, 1, lease.MaxTokens);

        // One fetch at a time: while it is in flight no other starts, and requests pay their own cost only.
        Assert.True(lease.TryTake(1, out _, out var refillWhileFetching));
        Assert.Null(refillWhileFetching);
        Assert.Null(lease.BeginFetch(1));

        Assert.Equal(24 + 100, refillAtAQuarter.Complete(Granted(held: 100, bucketLeft: 1300)));
    }

    [Fact]
    public void A_refill_granted_nothing_is_not_asked_again_by_every_request_that_spends_what_is_left()
    {
        var lease = new TokenLease(Ingest, _time);
        Assert.Equal(100, Begin(lease, 1).Complete(Granted(held: 100, bucketLeft: 1500)));
        LeaseFetch? refill = null;
        while (refill is null)
        {
            Assert.True(lease.TryTake(1, out _, out refill));
        }

        // The bucket is nearly empty: Redis grants nothing to hold. The 25 tokens still held are spent without a
        // Redis call each; the next fetch is asked when they are gone.
        Assert.Equal(25, refill.Complete(Granted(held: 0, bucketLeft: 1)));
        for (var taken = 1; taken < 25; taken++)
        {
            Assert.True(lease.TryTake(1, out _, out var another));
            Assert.Null(another);
        }

        Assert.True(lease.TryTake(1, out _, out var whenSpent));
        Assert.NotNull(whenSpent);
    }

    [Fact]
    public void A_cost_beyond_what_is_held_is_paid_with_every_held_token_and_the_rest_from_redis()
    {
        var lease = new TokenLease(Ingest, _time);
        Begin(lease, 1).Complete(Granted(held: 30, bucketLeft: 1000));

        Assert.False(lease.TryTake(100, out _, out _));
        var fetch = Begin(lease, 100);
        Assert.Equal(30, fetch.PaidFromHeld);
        Assert.Equal(70, fetch.Request.Cost);
        Assert.Equal(0, lease.Tokens);

        // Redis refuses the rest: the held tokens paid nothing, so they are held again, until their own end.
        Assert.Equal(30, fetch.Complete(new RateDecision(false, 10, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1))));
        Assert.Equal(30, lease.Tokens);
        Assert.True(lease.TryTake(30, out _, out _));
    }

    [Fact]
    public void Unspent_tokens_are_dropped_a_lifetime_after_their_fetch_started_and_handed_back_with_the_next()
    {
        var lease = new TokenLease(Ingest, _time);
        Begin(lease, 1).Complete(Granted(held: 10, bucketLeft: 0));

        _time.Advance(TimeSpan.FromMilliseconds(99));
        Assert.True(lease.TryTake(1, out _, out _));
        Assert.Equal(9, lease.Tokens);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, lease.Tokens);
        Assert.False(lease.TryTake(1, out _, out _));
        Assert.Equal(9, Begin(lease, 1).Request.Returned);
    }

    [Fact]
    public void Tokens_left_from_an_earlier_fetch_are_spent_first_and_still_end_a_lifetime_after_it()
    {
        var lease = new TokenLease(Ingest, _time);
        Begin(lease, 1).Complete(Granted(held: 10, bucketLeft: 0));
        _time.Advance(TimeSpan.FromMilliseconds(60));
        LeaseFetch? refill = null;
        for (var taken = 0; taken < 8; taken++)
        {
            Assert.True(lease.TryTake(1, out _, out refill));
        }

        Assert.NotNull(refill);
        Assert.Equal(2 + 20, refill.Complete(Granted(held: 20, bucketLeft: 0)));

        Assert.True(lease.TryTake(1, out _, out _));
        _time.Advance(TimeSpan.FromMilliseconds(40));
        Assert.Equal(20, lease.Tokens);
        _time.Advance(TimeSpan.FromMilliseconds(60));
        Assert.Equal(0, lease.Tokens);
    }

    [Fact]
    public void A_fetch_without_an_answer_forgets_what_it_handed_back_since_redis_may_have_taken_it()
    {
        var lease = new TokenLease(Ingest, _time);
        Begin(lease, 1).Complete(Granted(held: 10, bucketLeft: 0));
        _time.Advance(TimeSpan.FromMilliseconds(100));

        var failed = Begin(lease, 1);
        Assert.Equal(10, failed.Request.Returned);
        Assert.Null(lease.BeginFetch(1));
        failed.Abandon();

        // Handing the ten back again could add them to the bucket twice, if the script ran and only its answer was lost.
        Assert.Equal(0, Begin(lease, 1).Request.Returned);
    }

    [Fact]
    public void A_fetch_is_settled_exactly_once()
    {
        var lease = new TokenLease(Ingest, _time);
        var fetch = Begin(lease, 1);
        fetch.Complete(Granted(held: 10, bucketLeft: 0));

        Assert.Throws<InvalidOperationException>(() => fetch.Complete(Granted(held: 10, bucketLeft: 0)));
        Assert.Throws<InvalidOperationException>(fetch.Abandon);
        Assert.Equal(10, lease.Tokens);
    }

    [Fact]
    public void A_small_bucket_is_decided_one_token_at_a_time()
    {
        var lease = new TokenLease(new TokenBucketRule("ingest", 15, 1000, TimeSpan.FromMilliseconds(100)), _time);
        Assert.Equal(1, lease.MaxTokens);
        for (var request = 0; request < 100; request++)
        {
            Assert.False(lease.TryTake(1, out _, out _));
        }

        Assert.Equal(new TokenRequest(1), Begin(lease, 1).Request);
    }

    [Fact]
    public void A_slow_key_holds_what_it_spends_in_the_slow_key_lifetime_for_that_long_and_a_busy_one_does_not()
    {
        var lease = new TokenLease(Ingest with { SlowKeyLeaseLifetime = TimeSpan.FromSeconds(5) }, _time);
        _time.Advance(TimeSpan.FromMilliseconds(200));
        Assert.False(lease.TryTake(1, out _, out _));
        // One request in 200 ms: less than one per 100 ms lifetime, 25 per 5 s.
        var slow = Begin(lease, 1);
        Assert.Equal(new TokenRequest(1, 24, Lease: LeaseLength.Slow), slow.Request);
        Assert.Equal(24, slow.Complete(Granted(held: 24, bucketLeft: 1900, LeaseLength.Slow)));

        _time.Advance(TimeSpan.FromMilliseconds(4999));
        Assert.Equal(24, lease.Tokens);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, lease.Tokens);

        // Then fifty requests in the 50 ms after a fetch: a busy key, asking for a lifetime's worth of the short lease.
        Assert.False(lease.TryTake(1, out _, out _));
        Begin(lease, 1).Complete(Granted(held: 0, bucketLeft: 1900));
        for (var request = 0; request < 50; request++)
        {
            Assert.False(lease.TryTake(1, out _, out _));
            _time.Advance(TimeSpan.FromMilliseconds(1));
        }

        var busy = Begin(lease, 1);
        Assert.Equal(LeaseLength.Busy, busy.Request.Lease);
        Assert.Equal(100, busy.Request.Cost + busy.Request.Hold);
    }

    [Fact]
    public void A_slow_key_asks_for_the_quiet_key_lifetime_and_holds_its_tokens_for_the_lease_redis_granted()
    {
        var rule = Ingest with { SlowKeyLeaseLifetime = TimeSpan.FromSeconds(5), QuietKeyLeaseLifetime = TimeSpan.FromSeconds(30) };
        var quiet = new TokenLease(rule, _time);
        var pastTheShare = new TokenLease(rule, _time);
        _time.Advance(TimeSpan.FromMilliseconds(200));

        // One request in 200 ms: 150 per 30 s.
        Assert.False(quiet.TryTake(1, out _, out _));
        var asked = Begin(quiet, 1);
        Assert.Equal(new TokenRequest(1, 149, Lease: LeaseLength.Quiet), asked.Request);
        Assert.Equal(149, asked.Complete(Granted(held: 149, bucketLeft: 1800, LeaseLength.Quiet)));

        // Redis may grant the slow-key lease instead (past the quiet leases' share): held for that, not 30 s.
        Assert.False(pastTheShare.TryTake(1, out _, out _));
        var shorter = Begin(pastTheShare, 1);
        Assert.Equal(LeaseLength.Quiet, shorter.Request.Lease);
        Assert.Equal(25, shorter.Complete(Granted(held: 25, bucketLeft: 1800, LeaseLength.Slow)));

        _time.Advance(TimeSpan.FromMilliseconds(4999));
        Assert.Equal((149, 25), (quiet.Tokens, pastTheShare.Tokens));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal((149, 0), (quiet.Tokens, pastTheShare.Tokens));
        _time.Advance(TimeSpan.FromSeconds(25) - TimeSpan.FromMilliseconds(1));
        Assert.Equal(149, quiet.Tokens);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, quiet.Tokens);
    }

    [Fact]
    public void A_window_s_permits_are_held_until_its_end_at_the_latest_and_say_what_is_left_of_it()
    {
        var usage = new FixedWindowRule("usage", 800, TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(2));
        var lease = new TokenLease(usage, _time);
        Assert.Equal(100, lease.MaxTokens);
        // Redis answered that the window ends in 500 ms: the permits are not held for the lease's 2 s.
        Assert.Equal(50, Begin(lease, 1).Complete(Permitted(held: 50, left: 700, windowLeft: TimeSpan.FromMilliseconds(500), window: 1_000)));

        _time.Advance(TimeSpan.FromMilliseconds(100));
        Assert.True(lease.TryTake(1, out var decision, out _));
        Assert.Equal(700 + 49, decision.Remaining);
        Assert.Equal(TimeSpan.FromMilliseconds(400), decision.ResetAfter);
        Assert.Equal("\"usage\";r=749;t=1", decision.Header(usage));

        _time.Advance(TimeSpan.FromMilliseconds(400));
        Assert.Equal(0, lease.Tokens);
        Assert.False(lease.TryTake(1, out _, out _));
        // Handed back to the window they came from, which Redis ignores once a later one has begun.
        var next = Begin(lease, 1);
        Assert.Equal(new TokenRequest(1, next.Request.Hold, 49, ReturnedPeriod: 1_000), next.Request);
    }

    [Fact]
    public void An_answer_from_a_later_window_drops_what_is_held_of_an_earlier_one_without_handing_it_back()
    {
        var (lease, refill) = UsageLeaseDueForRefill(firstWindow: 1_000);

        // Redis says a later window has begun: the earlier one has ended, so its 12 permits held here go, and are
        // not handed back (they would count against the later window).
        Assert.NotNull(refill);
        Assert.Equal(20, refill.Complete(Permitted(held: 20, left: 779, windowLeft: TimeSpan.FromSeconds(60), window: 61_000)));
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(0, lease.Tokens);
        var next = Begin(lease, 1);
        Assert.Equal(20, next.Request.Returned);
        Assert.Equal(61_000, next.Request.ReturnedPeriod);
    }

    [Fact]
    public void An_answer_from_the_same_window_whose_end_redis_reports_a_few_milliseconds_apart_keeps_what_is_held()
    {
        var (lease, refill) = UsageLeaseDueForRefill(firstWindow: 31_000);

        // The script works the window's end out afresh on each call (its clock plus PTTL): 2 ms apart, still the
        // same window. The 12 permits held of it stay, beside the 20 new ones.
        Assert.NotNull(refill);
        Assert.Equal(32, refill.Complete(Permitted(held: 20, left: 652, windowLeft: TimeSpan.FromSeconds(30), window: 30_998)));
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(32, Begin(lease, 1).Request.Returned);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_request_that_paid_in_redis_while_a_fetch_was_in_flight_is_not_reported_as_left_whichever_answer_comes_first(bool ownAnswerFirst)
    {
        var lease = new TokenLease(new FixedWindowRule("usage", 100, TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(10)), _time);
        Begin(lease, 1).Complete(Permitted(held: 12, left: 87, windowLeft: TimeSpan.FromSeconds(30), window: 31_000));
        LeaseFetch? refill = null;
        for (var taken = 0; taken < 9; taken++)
        {
            Assert.True(lease.TryTake(1, out _, out refill));
        }

        // Redis runs the refill (12 more held here: 75 left there), then a request of this instance that found no
        // permit held and paid its own in Redis (74 left); their answers come back in either order.
        Assert.NotNull(refill);
        var own = new RateDecision(true, 74, TimeSpan.FromSeconds(30), TimeSpan.Zero) { Period = 30_998 };
        if (ownAnswerFirst)
        {
            lease.Observe(own);
        }

        refill.Complete(Permitted(held: 12, left: 75, windowLeft: TimeSpan.FromSeconds(30), window: 31_000));
        if (!ownAnswerFirst)
        {
            lease.Observe(own);
        }

        // 3 + 12 held, one of them spent now: 14 held and 74 in Redis are left.
        Assert.True(lease.TryTake(1, out var decision, out _));
        Assert.Equal(74 + 14, decision.Remaining);
    }

    /// <summary>A usage lease holding 48 permits of the window Redis names <paramref name="firstWindow"/>, 36 of them
    /// taken since, and the refill the last take asked for.</summary>
    private (TokenLease Lease, LeaseFetch? Refill) UsageLeaseDueForRefill(long firstWindow)
    {
        var lease = new TokenLease(new FixedWindowRule("usage", 800, TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(2)), _time);
        Begin(lease, 1).Complete(Permitted(held: 48, left: 700, windowLeft: TimeSpan.FromSeconds(30), window: firstWindow));
        LeaseFetch? refill = null;
        for (var taken = 0; taken < 36; taken++)
        {
            Assert.True(lease.TryTake(1, out _, out refill));
        }

        return (lease, refill);
    }

    private static RateDecision Permitted(int held, long left, TimeSpan windowLeft, long window) =>
        new(true, left, windowLeft, TimeSpan.Zero) { Held = held, Period = window };

    private static LeaseFetch Begin(TokenLease lease, int cost) => lease.BeginFetch(cost) ?? throw new Xunit.Sdk.XunitException("A fetch is in flight.");

    private static RateDecision Granted(int held, long bucketLeft, LeaseLength lease = LeaseLength.Busy) =>
        new(true, bucketLeft, TimeSpan.Zero, TimeSpan.Zero) { Held = held, Lease = lease };
}
