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
            Assert.False(lease.TryTake(out _, out _));
            Assert.Equal(1, lease.BeginFetch().Tokens);
            Assert.Equal(0, lease.Complete(0, 1999));
        }
    }

    [Fact]
    public void A_busy_key_asks_for_what_its_rate_spends_in_a_lifetime_up_to_an_eighth_of_the_burst()
    {
        var lease = new TokenLease(Ingest, _time);
        Assert.Equal(250, lease.MaxTokens);
        Assert.False(lease.TryTake(out _, out _));
        // One request reads as at most ten per lifetime: demand is measured over at least a tenth of one.
        Assert.Equal(10, lease.BeginFetch().Tokens);
        lease.Complete(0, 0);

        Assert.Equal(100, FetchAfter(requests: 50, over: TimeSpan.FromMilliseconds(50)));
        Assert.Equal(250, FetchAfter(requests: 500, over: TimeSpan.FromMilliseconds(50)));
        Assert.Equal(1, FetchAfter(requests: 1, over: TimeSpan.FromMilliseconds(500)));

        int FetchAfter(int requests, TimeSpan over)
        {
            for (var request = 0; request < requests; request++)
            {
                Assert.False(lease.TryTake(out _, out _));
                _time.Advance(over / requests);
            }

            var wanted = lease.BeginFetch().Tokens;
            lease.Complete(0, 0);
            return wanted;
        }
    }

    [Fact]
    public void Held_tokens_are_spent_one_per_request_and_the_next_fetch_starts_when_a_quarter_is_left()
    {
        var lease = new TokenLease(Ingest, _time);
        Assert.True(lease.BeginFetch().Tokens > 0);
        Assert.Equal(100, lease.Complete(100, 1500));

        for (var taken = 1; taken <= 74; taken++)
        {
            Assert.True(lease.TryTake(out var bucketLeft, out var refill));
            Assert.Equal(1500 + 100 - taken, bucketLeft);
            Assert.True(refill.IsNone);
        }

        Assert.True(lease.TryTake(out _, out var refillAtAQuarter));
        Assert.InRange(refillAtAQuarter.Tokens, 1, lease.MaxTokens);
        Assert.True(refillAtAQuarter.IsRefill);

        // One fetch at a time: while it is in flight no other starts, and requests ask for their own token only.
        Assert.True(lease.TryTake(out _, out var refillWhileFetching));
        Assert.True(refillWhileFetching.IsNone);
        Assert.Equal(0, lease.BeginFetch().Tokens);

        Assert.Equal(24 + 100, lease.Complete(100, 1300));
    }

    [Fact]
    public void Unspent_tokens_are_dropped_a_lifetime_after_their_fetch_started_and_handed_back_with_the_next()
    {
        var lease = new TokenLease(Ingest, _time);
        lease.BeginFetch();
        lease.Complete(10, 0);

        _time.Advance(TimeSpan.FromMilliseconds(99));
        Assert.True(lease.TryTake(out _, out _));
        Assert.Equal(9, lease.Tokens);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, lease.Tokens);
        Assert.False(lease.TryTake(out _, out _));
        Assert.Equal(9, lease.BeginFetch().Returned);
    }

    [Fact]
    public void Tokens_left_from_an_earlier_fetch_are_spent_first_and_still_end_a_lifetime_after_it()
    {
        var lease = new TokenLease(Ingest, _time);
        lease.BeginFetch();
        lease.Complete(10, 0);
        _time.Advance(TimeSpan.FromMilliseconds(60));
        Assert.True(lease.TryTake(out _, out _));
        Assert.True(lease.BeginFetch().Tokens > 0);
        Assert.Equal(9 + 20, lease.Complete(20, 0));

        Assert.True(lease.TryTake(out _, out _));
        _time.Advance(TimeSpan.FromMilliseconds(40));
        Assert.Equal(20, lease.Tokens);
        _time.Advance(TimeSpan.FromMilliseconds(60));
        Assert.Equal(0, lease.Tokens);
    }

    [Fact]
    public void A_fetch_that_fails_ends_and_what_it_handed_back_goes_with_the_next_one()
    {
        var lease = new TokenLease(Ingest, _time);
        lease.BeginFetch();
        lease.Complete(10, 0);
        _time.Advance(TimeSpan.FromMilliseconds(100));

        var failed = lease.BeginFetch();
        Assert.Equal(10, failed.Returned);
        Assert.True(lease.BeginFetch().IsNone);
        lease.Abandon(failed);

        var next = lease.BeginFetch();
        Assert.False(next.IsNone);
        Assert.False(next.IsRefill);
        Assert.Equal(10, next.Returned);
        // Redis answered (a refusal): the fetch ends, and nothing is handed back twice.
        Assert.Equal(0, lease.Complete(0, 0));
        Assert.Equal(0, lease.BeginFetch().Returned);
    }

    [Fact]
    public void A_small_bucket_is_decided_one_token_at_a_time()
    {
        var lease = new TokenLease(new TokenBucketRule("ingest", 15, 1000, TimeSpan.FromMilliseconds(100)), _time);
        Assert.Equal(1, lease.MaxTokens);
        for (var request = 0; request < 100; request++)
        {
            Assert.False(lease.TryTake(out _, out _));
        }

        Assert.Equal(1, lease.BeginFetch().Tokens);
    }
}
