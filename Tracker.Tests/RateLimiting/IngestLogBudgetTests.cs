using System.Globalization;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.ProblemAssertions;
using static Tracker.Tests.RateLimiting.RateLimitAssertions;

namespace Tracker.Tests.RateLimiting;

/// <summary>
/// The ingest limit counts logs: a batch spends one token per log, all of them or none, with leases (tokens held
/// ahead, here for 10 s so none ends during a test) and without; the headers say what is left.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class IngestLogBudgetTests(ServersFixture servers)
{
    private static Dictionary<string, string?> Bucket(int burst, double perSecond, int leaseMilliseconds) => new()
    {
        ["RateLimiting:Ingest:BurstLimit"] = burst.ToString(CultureInfo.InvariantCulture),
        ["RateLimiting:Ingest:TokensPerSecond"] = perSecond.ToString(CultureInfo.InvariantCulture),
        ["RateLimiting:Ingest:LeaseMilliseconds"] = leaseMilliseconds.ToString(CultureInfo.InvariantCulture),
        ["Ingest:MaxLogsPerBatchRequest"] = burst.ToString(CultureInfo.InvariantCulture),
    };

    [Theory]
    [InlineData(0)]
    [InlineData(10_000)]
    public async Task Batches_totalling_the_bucket_pass_and_the_next_is_refused_with_the_spend_in_redis(int leaseMilliseconds)
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, Bucket(100, 0.001, leaseMilliseconds));
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();

        foreach (var (logs, left) in new[] { (40, 60), (35, 25), (25, 0) })
        {
            using var response = await http.PostBatchAsync(client.ApiKey, Logs(logs));
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            Assert.StartsWith($"\"ingest\";r={left};", Header(response, "RateLimit"), StringComparison.Ordinal);
        }

        using var refused = await http.PostBatchAsync(client.ApiKey, Logs(2));
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal(100, await CountLogsAsync(factory.DatabaseConnectionString));
        await using var redis = await ConnectionMultiplexer.ConnectAsync(servers.Redis.ConnectionString);
        Assert.InRange(await BucketTokensAsync(redis, factory), 0, 0.5);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(10_000)]
    public async Task A_batch_the_bucket_cannot_pay_is_refused_whole_before_it_is_parsed_says_so_truthfully_and_stores_nothing(int leaseMilliseconds)
    {
        // One token every 100 s: what is left and when to retry are exact to a second.
        await using var factory = await TrackerApiFactory.CreateAsync(servers, Bucket(100, 0.01, leaseMilliseconds));
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();

        using (var paid = await http.PostBatchAsync(client.ApiKey, Logs(60)))
        {
            Assert.Equal(HttpStatusCode.Created, paid.StatusCode);
            Assert.StartsWith("\"ingest\";r=40;", Header(paid, "RateLimit"), StringComparison.Ordinal);
        }

        // 50 logs: the request's own token is taken, 39 remain, and 49 more cannot be paid: 10 short, 1000 s.
        using (var refused = await http.PostBatchAsync(client.ApiKey, Logs(50)))
        {
            var problem = await AssertProblemAsync(refused, HttpStatusCode.TooManyRequests);
            Assert.Equal("Too many logs.", problem.GetProperty("title").GetString());
            Assert.Equal("\"ingest\";q=100;w=10000", Header(refused, "RateLimit-Policy"));
            Assert.StartsWith("\"ingest\";r=39;", Header(refused, "RateLimit"), StringComparison.Ordinal);
            Assert.InRange(int.Parse(Header(refused, "Retry-After"), CultureInfo.InvariantCulture), 990, 1000);
        }

        Assert.Equal(60, await CountLogsAsync(factory.DatabaseConnectionString));

        // The budget refuses a batch it cannot pay before the batch is parsed: fifty invalid logs are a 429, not a 400.
        using (var unread = await http.PostBatchAsync(client.ApiKey, [.. Enumerable.Repeat(Log(ip: "010.0.0.1"), 50)]))
        {
            var problem = await AssertProblemAsync(unread, HttpStatusCode.TooManyRequests);
            Assert.Equal("Too many logs.", problem.GetProperty("title").GetString());
            Assert.StartsWith("\"ingest\";r=38;", Header(unread, "RateLimit"), StringComparison.Ordinal);
        }

        // A batch it can pay is paid before it is validated: an invalid one costs its logs, as a valid one does.
        using (var invalid = await http.PostBatchAsync(client.ApiKey, [.. Logs(19), Log(ip: "010.0.0.1")]))
        {
            Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
            Assert.StartsWith("\"ingest\";r=18;", Header(invalid, "RateLimit"), StringComparison.Ordinal);
        }

        // What the refused batches did not spend is still there, to the last token.
        using var rest = await http.PostBatchAsync(client.ApiKey, Logs(18));
        Assert.Equal(HttpStatusCode.Created, rest.StatusCode);
        Assert.StartsWith("\"ingest\";r=0;", Header(rest, "RateLimit"), StringComparison.Ordinal);
        Assert.Equal(78, await CountLogsAsync(factory.DatabaseConnectionString));
    }

    [Fact]
    public async Task A_batch_the_queue_refuses_costs_its_request_s_token_only_not_its_logs()
    {
        var settings = Bucket(100, 0.01, leaseMilliseconds: 0);
        // The client's share of the queue is 50 logs, and its commits are held, so what it queues stays queued.
        settings["Ingest:Writers"] = "1";
        settings["Ingest:QueueCapacity"] = "200";
        settings["Ingest:ClientQueueSharePercent"] = "25";
        settings["Ingest:CommitTimeoutSeconds"] = "60";
        await using var factory = await TrackerApiFactory.CreateAsync(servers, settings);
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        var writer = factory.Services.GetRequiredService<Tracker.ApiService.Ingest.LogBatchWriter>();
        await using var gate = await Ingest.CommitGate.CloseAsync(factory.DatabaseConnectionString);
        var held = http.PostLogAsync(client.ApiKey, Log(endpoint: "/held"));
        await Poll.UntilAsync(async () => await Ingest.CommitGate.WaitingAsync(servers.Postgres.AdminConnectionString) > 0, TimeSpan.FromSeconds(10));
        var queued = http.PostBatchAsync(client.ApiKey, Logs(40));
        await Poll.UntilAsync(() => Task.FromResult(writer.QueuedLogs == 40), TimeSpan.FromSeconds(10));

        // 59 tokens left; 20 more logs would pass the client's share of 50: refused by the queue, its body read.
        using (var refused = await http.PostBatchAsync(client.ApiKey, Logs(20)))
        {
            var problem = await AssertProblemAsync(refused, HttpStatusCode.TooManyRequests);
            Assert.Equal("Too many logs waiting.", problem.GetProperty("title").GetString());
            Assert.StartsWith("\"ingest\";r=58;", Header(refused, "RateLimit"), StringComparison.Ordinal);
        }

        await gate.OpenAsync();
        foreach (var answer in await Task.WhenAll(held, queued))
        {
            Assert.Equal(HttpStatusCode.Created, answer.StatusCode);
            answer.Dispose();
        }

        // The refused batch's logs are still in the bucket, to the last token.
        using var rest = await http.PostBatchAsync(client.ApiKey, Logs(58));
        Assert.Equal(HttpStatusCode.Created, rest.StatusCode);
        Assert.StartsWith("\"ingest\";r=0;", Header(rest, "RateLimit"), StringComparison.Ordinal);
        Assert.Equal(99, await CountLogsAsync(factory.DatabaseConnectionString));
    }

    [Fact]
    public async Task Two_instances_and_many_keys_never_admit_more_logs_than_each_bucket_holds()
    {
        const int burst = 200;
        const int keys = 12;
        await using var first = await TrackerApiFactory.CreateAsync(servers, Bucket(burst, 0.001, leaseMilliseconds: 100));
        await using var second = first.CreateSibling();
        using var firstHttp = first.CreateClient();
        using var secondHttp = second.CreateClient();
        var clients = await Task.WhenAll(Enumerable.Range(0, keys).Select(_ => firstHttp.RegisterNewAsync()));

        // Each key asks for twice its bucket, in single logs and batches of up to 40, from both instances at once.
        var random = new Random(20);
        var sends = clients.SelectMany(client => Enumerable.Range(0, 30).Select(index =>
            (Client: client, Http: index % 2 == 0 ? firstHttp : secondHttp, Logs: index % 3 == 0 ? 1 : random.Next(2, 41)))).ToList();
        using var concurrency = new SemaphoreSlim(32);
        var results = await Task.WhenAll(sends.Select(async send =>
        {
            await concurrency.WaitAsync();
            try
            {
                using var response = send.Logs == 1
                    ? await send.Http.PostLogAsync(send.Client.ApiKey, Log())
                    : await send.Http.PostBatchAsync(send.Client.ApiKey, Logs(send.Logs));
                Assert.True(response.StatusCode is HttpStatusCode.Created or HttpStatusCode.TooManyRequests, $"{response.StatusCode}");
                return (send.Client.Id, Logs: response.StatusCode == HttpStatusCode.Created ? send.Logs : 0);
            }
            finally
            {
                concurrency.Release();
            }
        }));

        foreach (var client in clients)
        {
            var acknowledged = results.Where(result => result.Id == client.Id).Sum(result => result.Logs);
            var stored = await ScalarAsync(first.DatabaseConnectionString, $"SELECT count(*) FROM logs WHERE client_id = '{client.Id}'");
            Assert.Equal(acknowledged, stored);
            // Never more than the bucket; and not far below it: each instance holds at most an eighth, and the
            // last tokens may be fewer than the batch that asked for them.
            Assert.InRange(stored, burst / 2, burst);
        }
    }

    [Fact]
    public async Task A_burst_smaller_than_the_largest_batch_stops_the_api_at_start_naming_both_settings()
    {
        await using var misconfigured = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["RateLimiting:Ingest:BurstLimit"] = "999",
        });

        var exception = Assert.ThrowsAny<Exception>(() => misconfigured.CreateClient());
        var validation = Assert.IsType<Microsoft.Extensions.Options.OptionsValidationException>(exception.GetBaseException());
        Assert.Contains("Ingest:MaxLogsPerBatchRequest (1000) is more than RateLimiting:Ingest:BurstLimit (999)", validation.Message, StringComparison.Ordinal);
    }

    private static object[] Logs(int count) => [.. Enumerable.Range(0, count).Select(index => Log(endpoint: $"/budget/{index}"))];

    private static async Task<double> BucketTokensAsync(ConnectionMultiplexer redis, TrackerApiFactory factory)
    {
        var bucket = Assert.Single(await IngestBucketsAsync(redis, factory));
        return (double)await redis.GetDatabase().HashGetAsync(bucket, "tokens");
    }

}
