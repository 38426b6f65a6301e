using Microsoft.Extensions.Time.Testing;
using Tracker.ApiService.RateLimiting;

namespace Tracker.Tests.RateLimiting;

/// <summary>The in-memory fallback applies the same rules as the Redis scripts; its clock is faked here.</summary>
public sealed class LocalRateStoreTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void A_fixed_window_allows_its_limit_then_refuses_until_the_window_ends()
    {
        var store = new LocalRateStore(_time);
        var rule = new FixedWindowRule("usage", 3, TimeSpan.FromSeconds(60));

        var decisions = Enumerable.Range(0, 4).Select(_ => store.Decide(rule, "client")).ToArray();
        Assert.Equal([true, true, true, false], decisions.Select(decision => decision.Allowed));
        Assert.Equal([2L, 1, 0, 0], decisions.Select(decision => decision.Remaining));
        Assert.Equal(TimeSpan.FromSeconds(60), decisions[3].RetryAfter);

        _time.Advance(TimeSpan.FromSeconds(45));
        var later = store.Decide(rule, "client");
        Assert.False(later.Allowed);
        Assert.Equal(TimeSpan.FromSeconds(15), later.RetryAfter);

        _time.Advance(TimeSpan.FromSeconds(15));
        Assert.True(store.Decide(rule, "client").Allowed);
        Assert.True(store.Decide(rule, "another client").Allowed);
    }

    [Fact]
    public void A_token_bucket_allows_its_burst_then_refills_at_its_rate()
    {
        var store = new LocalRateStore(_time);
        var rule = new TokenBucketRule("ingest", 4, 2);

        Assert.Equal([true, true, true, true, false], Enumerable.Range(0, 5).Select(_ => store.Decide(rule, "key").Allowed));
        var refused = store.Decide(rule, "key");
        Assert.Equal(TimeSpan.FromSeconds(0.5), refused.RetryAfter);
        Assert.Equal(TimeSpan.FromSeconds(2), refused.ResetAfter);

        _time.Advance(TimeSpan.FromSeconds(0.5));
        Assert.True(store.Decide(rule, "key").Allowed);
        Assert.False(store.Decide(rule, "key").Allowed);

        // A long pause refills the bucket to its burst, never beyond it.
        _time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(4, Enumerable.Range(0, 10).Count(_ => store.Decide(rule, "key").Allowed));
    }

    [Fact]
    public void Headers_advertise_the_quota_the_window_and_what_remains()
    {
        var window = new FixedWindowRule("auth", 10, TimeSpan.FromMinutes(1));
        var bucket = new TokenBucketRule("ingest", 2000, 1000);
        Assert.Equal("\"auth\";q=10;w=60", window.PolicyHeader);
        Assert.Equal("\"ingest\";q=2000;w=2", bucket.PolicyHeader);
        Assert.Equal("\"auth\";r=7;t=43", new RateDecision(true, 7, TimeSpan.FromSeconds(42.2), TimeSpan.Zero).Header(window));
    }
}
