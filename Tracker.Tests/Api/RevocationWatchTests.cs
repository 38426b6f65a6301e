using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;
using Tracker.ApiService.ApiKeys;
using Tracker.ApiService.Storage;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.Api;

/// <summary>
/// The revocation watch's scripts against real Redis, its reads made one at a time on a fake clock: which
/// announcements forget one key, and which end every key an instance remembers.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class RevocationWatchTests(ServersFixture servers) : IAsyncLifetime
{
    private readonly string _prefix = $"test:{Guid.NewGuid():N}:";
    private readonly FakeTimeProvider _time = new();
    private readonly ActiveApiKey _key = new(Guid.NewGuid(), Guid.NewGuid());
    private readonly byte[] _revoked = SHA256.HashData("revoked"u8);
    private readonly byte[] _kept = SHA256.HashData("kept"u8);
    private ConnectionMultiplexer _redis = null!;
    private ServiceProvider _metrics = null!;

    public async Task InitializeAsync()
    {
        _redis = await ConnectionMultiplexer.ConnectAsync(servers.Redis.ConnectionString);
        _metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();
    }

    public async Task DisposeAsync()
    {
        await _redis.DisposeAsync();
        await _metrics.DisposeAsync();
    }

    [Fact]
    public async Task A_revocation_forgets_its_key_alone_whatever_the_counter_s_size_and_every_instance_hears_it()
    {
        // A counter past 10^14, where Lua writes numbers in exponent notation.
        await _redis.GetDatabase().StringSetAsync(_prefix + "{api-key-revocations}:counter", "4503599627370000");
        var instances = await SettledAsync(2);
        foreach (var (keys, _) in instances)
        {
            keys.Remember(_revoked, _key, keys.Begin());
            keys.Remember(_kept, _key, keys.Begin());
        }

        var versions = instances.Select(instance => instance.Keys.Version).ToList();
        await instances[0].Watch.AnnounceAsync(_revoked);
        await ReadAsync(instances);

        foreach (var (keys, _) in instances)
        {
            Assert.False(keys.TryGet(_revoked, out _));
            Assert.True(keys.TryGet(_kept, out _));
        }

        Assert.Equal(versions, instances.Select(instance => instance.Keys.Version));
    }

    [Fact]
    public async Task More_announcements_than_the_list_keeps_end_every_key()
    {
        var instances = await SettledAsync(1);
        var (keys, watch) = instances[0];
        keys.Remember(_kept, _key, keys.Begin());

        for (var announcement = 0; announcement <= RevocationWatch.Kept; announcement++)
        {
            await watch.AnnounceAsync(SHA256.HashData(Encoding.UTF8.GetBytes($"key {announcement}")));
        }

        await ReadAsync(instances);
        Assert.False(keys.TryGet(_kept, out _));
    }

    [Fact]
    public async Task A_deleted_counter_ends_every_key_and_an_announcement_after_it_is_not_read_as_following_the_last_number()
    {
        var instances = await SettledAsync(1);
        var (keys, watch) = instances[0];
        keys.Remember(_kept, _key, keys.Begin());

        // Announced by an instance after the counter was deleted (after an outage, say), before this one read it.
        await watch.AnnounceAllAsync();
        await watch.AnnounceAsync(_revoked);
        await ReadAsync(instances);

        Assert.False(keys.TryGet(_kept, out _));
        // Started again at a random number, not at 1.
        Assert.True((long)await _redis.GetDatabase().StringGetAsync(_prefix + "{api-key-revocations}:counter") > 1L << 40);
    }

    // Instances whose watches first read a lifetime ago and every interval since: what they find may be remembered.
    private async Task<List<(RememberedKeys Keys, RevocationWatch Watch)>> SettledAsync(int count)
    {
        var options = Microsoft.Extensions.Options.Options.Create(new RedisCacheOptions { InstanceName = _prefix });
        var availability = new RedisAvailability(_redis, _metrics.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(),
            NullLogger<RedisAvailability>.Instance);
        var instances = new List<(RememberedKeys Keys, RevocationWatch Watch)>();
        for (var instance = 0; instance < count; instance++)
        {
            var keys = new RememberedKeys(_time);
            instances.Add((keys, new RevocationWatch(_redis, availability, keys, options, _time, NullLogger<RevocationWatch>.Instance)));
        }

        for (var elapsed = TimeSpan.Zero; elapsed <= ApiKeyStore.LocalLifetime; elapsed += RevocationWatch.Interval)
        {
            await ReadAsync(instances);
        }

        return instances;
    }

    private async Task ReadAsync(List<(RememberedKeys Keys, RevocationWatch Watch)> instances)
    {
        _time.Advance(RevocationWatch.Interval);
        foreach (var (_, watch) in instances)
        {
            await watch.ReadAsync();
        }
    }
}
