using System.Net;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.ApiClient;
using static Tracker.Tests.Infrastructure.IngestClient;

namespace Tracker.Tests.RateLimiting;

/// <summary>A clustered Redis for one test class: three masters with a replica each.</summary>
public sealed class RedisClusterFixture : IAsyncLifetime
{
    public RedisClusterTestServer Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await RedisClusterTestServer.StartNewAsync();

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

/// <summary>
/// Tracker against a real Redis Cluster, as managed Redis in Azure shards keys: a script may only touch keys of one
/// hash slot, so every script and multi-key command keeps its keys in one slot, and a Redis error that is not an
/// outage falls back like one instead of failing the request.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class RedisClusterTests(ServersFixture servers, RedisClusterFixture cluster) : IClassFixture<RedisClusterFixture>
{
    private Dictionary<string, string?> OnCluster(Dictionary<string, string?>? settings = null)
    {
        var all = new Dictionary<string, string?>(settings ?? []) { ["ConnectionStrings:cache"] = cluster.Cluster.ConnectionString };
        return all;
    }

    [Fact]
    public async Task Thirty_clients_ingesting_at_once_on_a_redis_cluster_all_get_201()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, OnCluster());
        using var http = factory.CreateClient();
        var clients = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => http.RegisterNewAsync()));

        // 20 logs per client, all clients at once: their decisions meet in the limiter's batches.
        var statuses = await Task.WhenAll(clients.SelectMany(client => Enumerable.Range(0, 20).Select(async _ =>
        {
            using var response = await http.PostLogAsync(client.ApiKey, Log());
            return response.StatusCode;
        })));

        Assert.All(statuses, status => Assert.Equal(HttpStatusCode.Created, status));
        Assert.Equal(600, await CountLogsAsync(factory.DatabaseConnectionString));
    }

    [Fact]
    public async Task Limits_are_exact_on_a_redis_cluster_and_shared_by_two_instances()
    {
        await using var first = await TrackerApiFactory.CreateAsync(servers, OnCluster(new()
        {
            ["RateLimiting:Usage:PermitLimit"] = "5",
            ["RateLimiting:Ingest:BurstLimit"] = "5",
            ["RateLimiting:Ingest:TokensPerSecond"] = "0.001",
        }));
        await using var second = first.CreateSibling();
        using var firstHttp = first.CreateClient();
        using var secondHttp = second.CreateClient();
        var clients = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => firstHttp.RegisterNewAsync()));

        // Usage (a fixed window): ten reads per client, alternating between the instances, all clients at once.
        var reads = await Task.WhenAll(clients.Select(async client =>
        {
            var token = await firstHttp.LoginTokenAsync(client);
            var statuses = new List<HttpStatusCode>();
            for (var request = 0; request < 10; request++)
            {
                using var response = await (request % 2 == 0 ? firstHttp : secondHttp).SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", token);
                statuses.Add(response.StatusCode);
            }

            return statuses;
        }));
        Assert.All(reads, statuses => Assert.Equal(
            [.. Enumerable.Repeat(HttpStatusCode.OK, 5), .. Enumerable.Repeat(HttpStatusCode.TooManyRequests, 5)], statuses));

        // Ingest (a token bucket): 32 concurrent logs per client over both instances; exactly the bucket gets in.
        var logs = await Task.WhenAll(clients.Select(async client => await Task.WhenAll(Enumerable.Range(0, 32).Select(async index =>
        {
            using var response = await (index % 2 == 0 ? firstHttp : secondHttp).PostLogAsync(client.ApiKey, Log());
            return response.StatusCode;
        }))));
        Assert.All(logs, statuses => Assert.Equal(5, statuses.Count(status => status == HttpStatusCode.Created)));
        Assert.Equal(20, await CountLogsAsync(first.DatabaseConnectionString));
    }

    [Fact]
    public async Task Usage_reads_on_a_redis_cluster_are_cached_and_fresh()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, OnCluster());
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        var token = await http.LoginTokenAsync(client);

        Assert.Equal(0, (await http.DailyAsync(token)).Sum(day => day.Count));

        using (var logged = await http.PostLogAsync(client.ApiKey, Log()))
        {
            Assert.Equal(HttpStatusCode.Created, logged.StatusCode);
        }

        // The cached answer is replaced once the log's generation reaches the cluster.
        await Poll.UntilAsync(async () => (await http.DailyAsync(token)).Sum(day => day.Count) == 1, TimeSpan.FromSeconds(10));
    }
}
