using System.Collections.Concurrent;
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
            // A batch must fit the bucket (the API refuses to start otherwise).
            ["Ingest:MaxLogsPerBatchRequest"] = "5",
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
    [Fact]
    public async Task A_master_killed_mid_load_costs_no_5xx_and_decisions_return_to_redis_after_its_replica_takes_over()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, OnCluster());
        using var http = factory.CreateClient();
        var clients = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => http.RegisterNewAsync()));
        var keyId = await TextAsync(factory.DatabaseConnectionString, $"SELECT id::text FROM api_keys WHERE client_id = '{clients[0].Id}'");
        var (master, _) = await cluster.Cluster.NodesOfAsync($"{factory.RateLimitKeyPrefix}ingest:{Guid.Parse(keyId):N}");
        using var metrics = new MetricRecorder(factory, "tracker.rate_limit.decisions");

        using var stop = new CancellationTokenSource();
        var statuses = new ConcurrentBag<HttpStatusCode>();
        var load = Task.WhenAll(clients.Select(async client =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var response = await http.PostLogAsync(client.ApiKey, Log());
                statuses.Add(response.StatusCode);
            }
        }));
        try
        {
            await Poll.UntilAsync(() => Task.FromResult(statuses.Count >= 200), TimeSpan.FromSeconds(30));
            await master.StopAsync();
            // The replica is promoted once the other masters judge the master failed (a few node timeouts).
            await cluster.Cluster.WaitUntilServingAsync(TimeSpan.FromSeconds(30));
            metrics.Clear();
            var servedBefore = statuses.Count;
            await Poll.UntilAsync(() => Task.FromResult(
                metrics.Of("tracker.rate_limit.decisions", ("policy", "ingest"), ("store", "redis")).Any() && statuses.Count >= servedBefore + 200),
                TimeSpan.FromSeconds(30));
        }
        finally
        {
            await stop.CancelAsync();
            await load;
            await RestoreAsync(master);
        }

        Assert.All(statuses, status => Assert.Equal(HttpStatusCode.Created, status));
        Assert.Equal(statuses.Count, await CountLogsAsync(factory.DatabaseConnectionString));
    }

    [Fact]
    public async Task With_a_slots_master_and_replica_down_its_limits_hold_per_instance_and_nothing_fails_open()
    {
        // A command for a slot with no live node waits out the client's timeout (5 s by default) before it fails and
        // the limiter falls back: a shorter one keeps ten such requests quick.
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["ConnectionStrings:cache"] = cluster.Cluster.ConnectionString + ",asyncTimeout=1000,syncTimeout=1000",
            ["RateLimiting:Usage:PermitLimit"] = "5",
        });
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        var token = await http.LoginTokenAsync(client);
        var (master, replicas) = await cluster.Cluster.NodesOfAsync($"{factory.RateLimitKeyPrefix}usage:{client.Id:N}");
        var down = new[] { master }.Concat(replicas).ToList();
        try
        {
            foreach (var node in down)
            {
                await node.StopAsync();
            }

            var statuses = new List<HttpStatusCode>();
            for (var request = 0; request < 10; request++)
            {
                using var response = await http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", token);
                statuses.Add(response.StatusCode);
            }

            Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.OK, 5), .. Enumerable.Repeat(HttpStatusCode.TooManyRequests, 5)], statuses);
        }
        finally
        {
            foreach (var node in down)
            {
                await RestoreAsync(node);
            }
        }
    }

    /// <summary>Starts a killed node again (it rejoins from its nodes.conf) and waits until every slot is served.</summary>
    private async Task RestoreAsync(RedisTestServer node)
    {
        if (!node.IsRunning)
        {
            await node.StartAsync();
        }

        await cluster.Cluster.WaitUntilServingAsync(TimeSpan.FromSeconds(60));
    }
}
