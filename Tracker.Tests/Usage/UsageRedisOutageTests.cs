using System.Diagnostics;
using System.Net;
using StackExchange.Redis;
using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;
using static Tracker.Tests.Infrastructure.ApiClient;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.UsageClient;

namespace Tracker.Tests.Usage;

/// <summary>
/// With Redis stopped every endpoint keeps answering, correctly and fresh, from memory and PostgreSQL; the
/// outage is logged once, not per request; when Redis returns the API reconnects and uses it again by itself.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class UsageRedisOutageTests(ServersFixture servers, ITestOutputHelper output) : ApiTest(servers)
{
    // The product's 2 s bound plus room for a noisy 2-core machine; a cached answer never refreshed stays stale for
    // its local lifetime (30 s), far beyond it.
    private static readonly TimeSpan Freshness = TimeSpan.FromSeconds(2) + TimeSpan.FromSeconds(3);

    public override async Task InitializeAsync()
    {
        await AvoidDayBoundaryAsync();
        await base.InitializeAsync();
    }

    [Fact]
    public async Task Every_endpoint_answers_while_redis_is_down_and_redis_is_used_again_when_it_returns()
    {
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        await PostOneAsync(client);
        Assert.Equal(1, (await Http.DailyAsync(token, 1))[0].Count);
        using var metrics = new MetricRecorder(Factory, "tracker.redis.outages");

        await Servers.Redis.StopAsync();
        try
        {
            // Registration, login, key creation, ingest with a brand-new key, analytics: all of it, many times.
            var newcomer = await Http.RegisterNewAsync();
            var newcomerToken = await Http.LoginTokenAsync(newcomer);
            using (var created = await Http.SendWithTokenAsync(HttpMethod.Post, "/api/v1/keys", newcomerToken, new { name = "during outage" }))
            {
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            }

            for (var call = 2; call <= 6; call++)
            {
                await PostOneAsync(client);
                await PostOneAsync(newcomer);
                var expected = call;
                var took = await Poll.UntilAsync(async () => (await Http.DailyAsync(token, 1))[0].Count == expected, Freshness);
                var top = await Http.TopAsync(newcomerToken);
                output.WriteLine($"call {call} visible after {took.TotalMilliseconds:F0} ms without Redis");
                Assert.Contains(top, entry => entry.ClientId == client.Id);
            }

            var outageLines = Factory.Logs.Lines.Count(line => line.Contains("Redis is unavailable", StringComparison.Ordinal));
            Assert.Equal(1, outageLines);
            Assert.DoesNotContain(Factory.Logs.Lines, line => line.StartsWith("Error", StringComparison.Ordinal) && line.Contains("Cache backend", StringComparison.Ordinal));
            Assert.Single(metrics.Of("tracker.redis.outages"));
        }
        finally
        {
            await Servers.Redis.StartAsync();
        }

        var restored = Stopwatch.StartNew();
        await Poll.UntilLoggedAsync(Factory.Logs, "Redis is available again", TimeSpan.FromSeconds(30));
        output.WriteLine($"reconnected {restored.ElapsedMilliseconds} ms after Redis restarted");

        // Back on Redis: a new call is fresh, and the shared tier holds the generations and answers again.
        await PostOneAsync(client);
        await Poll.UntilAsync(async () => (await Http.DailyAsync(token, 1))[0].Count == 7, Freshness);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(Servers.Redis.ConnectionString);
        var keys = redis.GetServers().Single().Keys(pattern: Factory.CachePrefix + "*").Select(key => key.ToString()).ToArray();
        Assert.Contains(keys, key => key.StartsWith(Factory.CachePrefix + "usage-generation:", StringComparison.Ordinal));
        Assert.Contains(keys, key => key.StartsWith(Factory.CachePrefix + "usage-daily:", StringComparison.Ordinal));
    }

    private async Task PostOneAsync(RegisteredClient client)
    {
        using var response = await Http.PostLogAsync(client.ApiKey, Log());
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }
}
