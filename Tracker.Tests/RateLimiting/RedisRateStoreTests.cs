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
}
