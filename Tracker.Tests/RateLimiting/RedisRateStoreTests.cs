using StackExchange.Redis;
using Tracker.ApiService.RateLimiting;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.RateLimiting;

/// <summary>
/// The Lua scripts against real Redis. Under load one call carries the queued requests of one partition many times
/// over, and the scripts touch each key once per call: its requests must still be decided one after another, in
/// the order they came, exactly as separate calls would decide them.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class RedisRateStoreTests(ServersFixture servers) : IAsyncLifetime
{
    private readonly string _prefix = $"test:{Guid.NewGuid():N}:";
    private ConnectionMultiplexer _redis = null!;

    public async Task InitializeAsync() => _redis = await ConnectionMultiplexer.ConnectAsync(servers.Redis.ConnectionString);

    public async Task DisposeAsync() => await _redis.DisposeAsync();

    [Fact]
    public async Task A_fixed_window_counts_a_repeated_key_in_order_and_keys_apart()
    {
        var store = new RedisRateStore(_redis);
        var rule = new FixedWindowRule("usage", 3, TimeSpan.FromSeconds(60));
        RedisKey a = _prefix + "a", b = _prefix + "b";

        var first = await store.DecideAsync(rule, [a, a, b, a, a]);
        var second = await store.DecideAsync(rule, [b, a]);

        Assert.Equal([true, true, true, true, false], first.Select(decision => decision.Allowed));
        Assert.Equal([2L, 1, 2, 0, 0], first.Select(decision => decision.Remaining));
        Assert.Equal([true, false], second.Select(decision => decision.Allowed));
        Assert.Equal(5, (long)await _redis.GetDatabase().StringGetAsync(a));
        Assert.InRange(first[4].RetryAfter, TimeSpan.FromSeconds(59), TimeSpan.FromSeconds(60));
        Assert.InRange((await _redis.GetDatabase().KeyTimeToLiveAsync(a))!.Value, TimeSpan.FromSeconds(59), TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task A_token_bucket_spends_a_repeated_key_in_order_and_stores_what_is_left()
    {
        var store = new RedisRateStore(_redis);
        // A refill so slow that the calls below cannot see it.
        var rule = new TokenBucketRule("ingest", 3, 0.001);
        RedisKey a = _prefix + "a", b = _prefix + "b";

        var first = await store.DecideAsync(rule, [a, b, a, a, a]);
        var second = await store.DecideAsync(rule, [a, b]);

        Assert.Equal([true, true, true, true, false], first.Select(decision => decision.Allowed));
        Assert.Equal([2L, 2, 1, 0, 0], first.Select(decision => decision.Remaining));
        Assert.Equal([false, true], second.Select(decision => decision.Allowed));
        Assert.Equal(1, second[1].Remaining);
        Assert.True(await _redis.GetDatabase().KeyExistsAsync(a));
    }

    [Fact]
    public async Task A_token_bucket_grants_what_is_asked_up_to_half_of_what_is_left_and_at_least_one_token()
    {
        var store = new RedisRateStore(_redis);
        var rule = new TokenBucketRule("ingest", 100, 0.001);
        RedisKey a = _prefix + "a";

        var decisions = await store.DecideAsync(rule, [a, a, a, a], [new(30, 0), new(1, 0), new(80, 0), new(500, 0)]);
        // 100 left: 30 asked, 30 granted. 70: one. 69: 80 asked, half of it granted (34). 35: half again (17).
        Assert.Equal([29, 0, 33, 16], decisions.Select(decision => decision.LeasedTokens));
        Assert.Equal([70L, 69, 35, 18], decisions.Select(decision => decision.Remaining));

        var drained = await store.DecideAsync(rule, [a, a, a, a, a, a, a], [.. Enumerable.Repeat(new LeaseFetch(500, 0), 7)]);
        // 18 → 9 granted, 9 → 4, 5 → 2, then one each from 3, 2 and 1 (half of the last token is nothing, but a
        // request still gets it), then none.
        Assert.Equal([true, true, true, true, true, true, false], drained.Select(decision => decision.Allowed));
        Assert.Equal([8, 3, 1, 0, 0, 0, 0], drained.Select(decision => decision.LeasedTokens));
        Assert.Equal(0L, drained[6].Remaining);
    }

    [Fact]
    public async Task Tokens_granted_to_be_held_count_against_the_burst_until_their_lease_has_ended()
    {
        var store = new RedisRateStore(_redis);
        // Refills the whole burst in 100 ms; a lease lasts 1.5 s, so the checks while leases are held (at about 200
        // and 400 ms) have over a second of margin on a slow machine.
        var rule = new TokenBucketRule("ingest", 100, 1000, TimeSpan.FromMilliseconds(1500));
        RedisKey a = _prefix + "a";
        var granted = System.Diagnostics.Stopwatch.StartNew();

        var lease = Assert.Single(await store.DecideAsync(rule, [a], [new(40, 0)]));
        Assert.Equal(39, lease.LeasedTokens);
        Assert.Equal(60, lease.Remaining);

        // Refilled, the bucket would be full; while the 39 beyond the request's own may still be held elsewhere, it
        // stops at 100 - 39.
        await Task.Delay(TimeSpan.FromMilliseconds(200));
        Assert.Equal(60, Assert.Single(await store.DecideAsync(rule, [a])).Remaining);

        // A refill ahead of requests holds every token it gets.
        Assert.Equal(20, Assert.Single(await store.DecideAsync(rule, [a], [new(20, 0, IsRefill: true)])).LeasedTokens + 1);
        await Task.Delay(TimeSpan.FromMilliseconds(200));
        Assert.Equal(100 - 39 - 20 - 1, Assert.Single(await store.DecideAsync(rule, [a])).Remaining);
        Assert.True(granted.Elapsed < rule.LeaseLifetime, $"The checks above ran {granted.ElapsedMilliseconds} ms after the grant, beyond its lease.");

        // Counted for one to two lease lifetimes from their grant, they no longer hold the bucket down after that.
        await Task.Delay(2 * rule.LeaseLifetime + TimeSpan.FromMilliseconds(300));
        Assert.Equal(99, Assert.Single(await store.DecideAsync(rule, [a])).Remaining);
    }

    [Fact]
    public async Task Tokens_handed_back_return_to_the_bucket_within_the_burst_less_what_is_still_held()
    {
        var store = new RedisRateStore(_redis);
        var rule = new TokenBucketRule("ingest", 100, 0.001, TimeSpan.FromSeconds(60));
        RedisKey a = _prefix + "a";

        Assert.Equal(39, Assert.Single(await store.DecideAsync(rule, [a], [new(40, 0)])).LeasedTokens);
        var drained = await store.DecideAsync(rule, [.. Enumerable.Repeat(a, 61)]);
        Assert.False(drained[60].Allowed);

        // 30 of the 40 come back unspent: the next request is allowed from them.
        var afterReturn = Assert.Single(await store.DecideAsync(rule, [a], [new(1, 30)]));
        Assert.True(afterReturn.Allowed);
        Assert.Equal(29, afterReturn.Remaining);

        // While the 39 beyond the first request's own still count as held, the bucket never rises above 100 - 39,
        // however much is handed back.
        Assert.Equal(60, Assert.Single(await store.DecideAsync(rule, [a], [new(1, 100)])).Remaining);
    }
}
