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

        var first = await store.DecideAsync(rule, [a, a, b, a, a], Ones(5));
        var second = await store.DecideAsync(rule, [b, a], Ones(2));

        Assert.Equal([true, true, true, true, false], first.Select(decision => decision.Allowed));
        Assert.Equal([2L, 1, 2, 0, 0], first.Select(decision => decision.Remaining));
        Assert.Equal([true, false], second.Select(decision => decision.Allowed));
        // A refusal counts nothing.
        Assert.Equal(3, (long)await _redis.GetDatabase().StringGetAsync(a));
        Assert.InRange(first[4].RetryAfter, TimeSpan.FromSeconds(59), TimeSpan.FromSeconds(60));
        Assert.InRange((await _redis.GetDatabase().KeyTimeToLiveAsync(a))!.Value, TimeSpan.FromSeconds(59), TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task A_fixed_window_grants_to_hold_at_most_half_of_what_is_left_and_takes_back_only_its_own_permits()
    {
        var store = new RedisRateStore(_redis);
        var rule = new FixedWindowRule("usage", 100, TimeSpan.FromSeconds(2));
        RedisKey a = _prefix + "a";

        // 100: one taken, 29 held. 70: one taken, then 79 asked, half of the 69 left held (34). 35: a refill, half
        // held (17).
        var decisions = await store.DecideAsync(rule, [a, a, a], [new(1, 29), new(1, 79), new(0, 40)]);
        Assert.Equal([29, 34, 17], decisions.Select(decision => decision.Held));
        Assert.Equal([70L, 35, 18], decisions.Select(decision => decision.Remaining));
        var window = decisions[0].Period;
        Assert.All(decisions, decision => Assert.Equal(window, decision.Period));

        // Handed back to their window, the permits can be taken again; a hand-back naming another window is ignored.
        var back = await store.DecideAsync(rule, [a, a], [new(1, Returned: 20, ReturnedPeriod: window), new(1, Returned: 50, ReturnedPeriod: window - 2000)]);
        Assert.Equal([18L + 20 - 1, 18 + 20 - 2], back.Select(decision => decision.Remaining));

        // Once the window has ended, permits handed back to it do not add to the next one.
        await Task.Delay(rule.Window + TimeSpan.FromMilliseconds(100));
        var next = Assert.Single(await store.DecideAsync(rule, [a], [new(1, Returned: 60, ReturnedPeriod: window)]));
        Assert.Equal(99, next.Remaining);
        Assert.InRange(next.Period - window, 2000, 60_000);
    }

    [Fact]
    public async Task A_token_bucket_spends_a_repeated_key_in_order_and_stores_what_is_left()
    {
        var store = new RedisRateStore(_redis);
        // A refill so slow that the calls below cannot see it.
        var rule = new TokenBucketRule("ingest", 3, 0.001);
        RedisKey a = _prefix + "a", b = _prefix + "b";

        var first = await store.DecideAsync(rule, [a, b, a, a, a], Ones(5));
        var second = await store.DecideAsync(rule, [a, b], Ones(2));

        Assert.Equal([true, true, true, true, false], first.Select(decision => decision.Allowed));
        Assert.Equal([2L, 2, 1, 0, 0], first.Select(decision => decision.Remaining));
        Assert.Equal([false, true], second.Select(decision => decision.Allowed));
        Assert.Equal(1, second[1].Remaining);
        Assert.True(await _redis.GetDatabase().KeyExistsAsync(a));
    }

    [Fact]
    public async Task A_token_bucket_pays_a_cost_whole_or_not_at_all_and_grants_to_hold_at_most_half_of_what_is_left()
    {
        var store = new RedisRateStore(_redis);
        var rule = new TokenBucketRule("ingest", 100, 0.001);
        RedisKey a = _prefix + "a";

        var decisions = await store.DecideAsync(rule, [a, a, a, a], [new(1, 29), new(1), new(1, 79), new(1, 499)]);
        // 100 left: 1 paid, 29 held. 70: one. 69: one paid, then 80 asked, half of the 68 left held (34). 34: one
        // paid, half of 33 held (16).
        Assert.Equal([29, 0, 34, 16], decisions.Select(decision => decision.Held));
        Assert.Equal([70L, 69, 34, 17], decisions.Select(decision => decision.Remaining));

        // A cost is paid whole or refused whole: 17 cannot pay 20, nothing is taken, and 17 still can.
        var costs = await store.DecideAsync(rule, [a, a, a], [new(20), new(17), new(0, 10)]);
        Assert.Equal([false, true, true], costs.Select(decision => decision.Allowed));
        Assert.Equal([17L, 0, 0], costs.Select(decision => decision.Remaining));
        Assert.InRange(costs[0].RetryAfter, TimeSpan.FromSeconds(2_999), TimeSpan.FromSeconds(3_000));
        // A refill with nothing left is granted nothing to hold.
        Assert.Equal(0, costs[2].Held);
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

        var lease = Assert.Single(await store.DecideAsync(rule, [a], [new(1, 39)]));
        Assert.Equal(39, lease.Held);
        Assert.Equal(60, lease.Remaining);

        // Refilled, the bucket would be full; while the 39 beyond the request's own may still be held elsewhere, it
        // stops at 100 - 39.
        await Task.Delay(TimeSpan.FromMilliseconds(200));
        Assert.Equal(60, Assert.Single(await store.DecideAsync(rule, [a], Ones(1))).Remaining);

        // A refill ahead of requests holds every token it gets.
        Assert.Equal(20, Assert.Single(await store.DecideAsync(rule, [a], [new(0, 20)])).Held);
        await Task.Delay(TimeSpan.FromMilliseconds(200));
        Assert.Equal(100 - 39 - 20 - 1, Assert.Single(await store.DecideAsync(rule, [a], Ones(1))).Remaining);
        Assert.True(granted.Elapsed < rule.LeaseLifetime, $"The checks above ran {granted.ElapsedMilliseconds} ms after the grant, beyond its lease.");

        // Counted for one to two lease lifetimes from their grant, they no longer hold the bucket down after that.
        await Task.Delay(2 * rule.LeaseLifetime + TimeSpan.FromMilliseconds(300));
        Assert.Equal(99, Assert.Single(await store.DecideAsync(rule, [a], Ones(1))).Remaining);
    }

    [Fact]
    public async Task A_slow_key_s_tokens_count_against_the_burst_for_the_slow_key_lease()
    {
        var store = new RedisRateStore(_redis);
        // Busy keys' leases last 50 ms, slow keys' 1.5 s; the burst refills in 100 ms.
        var rule = new TokenBucketRule("ingest", 100, 1000, TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(1500));
        RedisKey a = _prefix + "a";
        var granted = System.Diagnostics.Stopwatch.StartNew();

        Assert.Equal(39, Assert.Single(await store.DecideAsync(rule, [a], [new(1, 39, Lease: LeaseLength.Slow)])).Held);

        // Well past two short leases, the 39 still hold the refilled bucket down.
        await Task.Delay(TimeSpan.FromMilliseconds(300));
        Assert.Equal(60, Assert.Single(await store.DecideAsync(rule, [a], Ones(1))).Remaining);
        Assert.True(granted.Elapsed < rule.SlowKeyLeaseLifetime, $"The check ran {granted.ElapsedMilliseconds} ms after the grant, beyond its lease.");

        await Task.Delay(2 * rule.SlowKeyLeaseLifetime + TimeSpan.FromMilliseconds(300));
        Assert.Equal(99, Assert.Single(await store.DecideAsync(rule, [a], Ones(1))).Remaining);
    }

    [Fact]
    public async Task A_quiet_key_s_tokens_count_against_the_burst_for_the_quiet_key_lease()
    {
        var store = new RedisRateStore(_redis);
        // Busy keys' leases last 50 ms, slow keys' 200 ms, quiet keys' 1.5 s; the burst refills in 100 ms.
        var rule = new TokenBucketRule("ingest", 100, 1000, TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(1500));
        RedisKey a = _prefix + "a";
        var granted = System.Diagnostics.Stopwatch.StartNew();

        var quiet = Assert.Single(await store.DecideAsync(rule, [a], [new(1, 12, Lease: LeaseLength.Quiet)]));
        Assert.Equal((12, LeaseLength.Quiet), (quiet.Held, quiet.Lease));

        // Well past two slow leases, the 12 still hold the refilled bucket down.
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        Assert.Equal(87, Assert.Single(await store.DecideAsync(rule, [a], Ones(1))).Remaining);
        Assert.True(granted.Elapsed < rule.QuietKeyLeaseLifetime, $"The check ran {granted.ElapsedMilliseconds} ms after the grant, beyond its lease.");

        await Task.Delay(2 * rule.QuietKeyLeaseLifetime + TimeSpan.FromMilliseconds(300));
        Assert.Equal(99, Assert.Single(await store.DecideAsync(rule, [a], Ones(1))).Remaining);
    }

    [Fact]
    public async Task Quiet_leases_of_every_instance_together_hold_at_most_an_eighth_of_the_burst_and_slow_leases_past_it()
    {
        var store = new RedisRateStore(_redis);
        // A burst of 160 (a share of 20) that does not refill during the test; slow leases of 6 s, quiet ones of 60 s.
        var rule = new TokenBucketRule("ingest", 160, 0.001, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(6), TimeSpan.FromSeconds(60));
        RedisKey a = _prefix + "a";

        // Eight instances each judge the key quiet and ask to hold 12 for a minute: the first is granted them; 24 would
        // be past the share, so the others are granted the slow-key lease, and what they would spend in it (a tenth).
        var decisions = await store.DecideAsync(rule, [.. Enumerable.Repeat(a, 8)], [.. Enumerable.Repeat(new TokenRequest(1, 12, Lease: LeaseLength.Quiet), 8)]);
        Assert.All(decisions, decision => Assert.True(decision.Allowed));
        Assert.Equal([12, 2, 2, 2, 2, 2, 2, 2], decisions.Select(decision => decision.Held));
        Assert.Equal([LeaseLength.Quiet, .. Enumerable.Repeat(LeaseLength.Slow, 7)], decisions.Select(decision => decision.Lease));
        Assert.Equal(160 - 8 - 12 - 7 * 2, decisions[^1].Remaining);

        // What still fits in the share is granted as asked.
        var small = Assert.Single(await store.DecideAsync(rule, [a], [new(1, 8, Lease: LeaseLength.Quiet)]));
        Assert.Equal((8, LeaseLength.Quiet), (small.Held, small.Lease));
    }

    [Fact]
    public async Task An_instance_with_shorter_leases_does_not_age_out_what_another_holds_for_longer()
    {
        var store = new RedisRateStore(_redis);
        // Two instances during a rolling change of settings: quiet leases of a minute, and none.
        var quiet = new TokenBucketRule("ingest", 160, 0.001, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(6), TimeSpan.FromSeconds(60));
        var none = quiet with { QuietKeyLeaseLifetime = TimeSpan.Zero };
        RedisKey a = _prefix + "a";

        Assert.Equal(LeaseLength.Quiet, Assert.Single(await store.DecideAsync(quiet, [a], [new(1, 12, Lease: LeaseLength.Quiet)])).Lease);
        Assert.True(Assert.Single(await store.DecideAsync(none, [a], Ones(1))).Allowed);

        // The 12 still count: 12 more would be past the share (20), so the slow-key lease is granted.
        var again = Assert.Single(await store.DecideAsync(quiet, [a], [new(1, 12, Lease: LeaseLength.Quiet)]));
        Assert.Equal((2, LeaseLength.Slow), (again.Held, again.Lease));
    }

    [Fact]
    public async Task Tokens_handed_back_return_to_the_bucket_within_the_burst_less_what_is_still_held()
    {
        var store = new RedisRateStore(_redis);
        var rule = new TokenBucketRule("ingest", 100, 0.001, TimeSpan.FromSeconds(60));
        RedisKey a = _prefix + "a";

        Assert.Equal(39, Assert.Single(await store.DecideAsync(rule, [a], [new(1, 39)])).Held);
        var drained = await store.DecideAsync(rule, [.. Enumerable.Repeat(a, 61)], Ones(61));
        Assert.False(drained[60].Allowed);

        // 30 of the 40 come back unspent: the next request is allowed from them.
        var afterReturn = Assert.Single(await store.DecideAsync(rule, [a], [new(1, Returned: 30)]));
        Assert.True(afterReturn.Allowed);
        Assert.Equal(29, afterReturn.Remaining);

        // While the 39 beyond the first request's own still count as held, the bucket never rises above 100 - 39,
        // however much is handed back.
        Assert.Equal(60, Assert.Single(await store.DecideAsync(rule, [a], [new(1, Returned: 100)])).Remaining);
    }

    [Fact]
    public async Task A_bucket_holds_no_more_than_the_burst_it_is_decided_with_after_the_burst_was_lowered()
    {
        var store = new RedisRateStore(_redis);
        RedisKey a = _prefix + "a";

        // An operator lowers the burst (a raised limit taken back, say): the tokens the old burst left must not
        // outlive it, or the key could spend far more than the new burst before the change took hold.
        await store.DecideAsync(new TokenBucketRule("ingest", 1_000_000, 0.001), [a], Ones(1));
        var lowered = new TokenBucketRule("ingest", 100, 0.001);

        var decisions = await store.DecideAsync(lowered, [a, a], [new(60), new(60)]);

        Assert.Equal([true, false], decisions.Select(decision => decision.Allowed));
        Assert.Equal([40L, 40], decisions.Select(decision => decision.Remaining));
    }

    private static TokenRequest[] Ones(int count) => [.. Enumerable.Repeat(TokenRequest.OneToken, count)];
}
