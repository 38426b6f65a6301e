using System.Globalization;
using System.Net;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.ProblemAssertions;
using static Tracker.Tests.RateLimiting.RateLimitAssertions;

namespace Tracker.Tests.RateLimiting;

/// <summary>The README's promises about the ingest policy: how a refusal reads, and what leases off means.</summary>
[Collection(nameof(RealServers))]
public sealed class IngestLimitClaimsTests(ServersFixture servers)
{
    [Fact]
    public async Task An_ingest_request_past_the_bucket_is_a_429_problem_with_retry_after_and_the_rate_limit_headers()
    {
        // Two tokens, one more every 10 s: the third request meets an empty bucket however slow the machine.
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["RateLimiting:Ingest:BurstLimit"] = "2",
            ["RateLimiting:Ingest:TokensPerSecond"] = "0.1",
            ["Ingest:MaxLogsPerBatchRequest"] = "2",
        });
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();

        for (var request = 0; request < 2; request++)
        {
            using var allowed = await http.PostLogAsync(client.ApiKey, Log());
            Assert.Equal(HttpStatusCode.Created, allowed.StatusCode);
        }

        using var refused = await http.PostLogAsync(client.ApiKey, Log());

        var problem = await AssertProblemAsync(refused, HttpStatusCode.TooManyRequests);
        Assert.Contains("ingest", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.InRange(int.Parse(Header(refused, "Retry-After"), CultureInfo.InvariantCulture), 1, 10);
        Assert.Equal("\"ingest\";q=2;w=20", Header(refused, "RateLimit-Policy"));
        Assert.StartsWith("\"ingest\";r=0;t=", Header(refused, "RateLimit"), StringComparison.Ordinal);
        Assert.Equal(2, await CountLogsAsync(factory.DatabaseConnectionString));
    }

    [Fact]
    public async Task With_leases_off_every_ingest_request_is_decided_in_redis_never_from_held_tokens()
    {
        var ingest = await BusyKeyDecisionsAsync(new Dictionary<string, string?>
        {
            ["RateLimiting:Ingest:LeaseMilliseconds"] = "0",
        });

        Assert.Equal(BusyKeyRequests, ingest.Count);
        Assert.All(ingest, decision => Assert.Equal("redis", decision.Tags["store"]));
    }

    [Fact]
    public async Task With_leases_on_a_busy_key_s_requests_are_decided_from_tokens_held_ahead()
    {
        var ingest = await BusyKeyDecisionsAsync();

        // Every request decided once, by Redis or by a token held ahead; once the key is known to be busy, most by
        // the tokens (a fetch takes what the key spends in a lease's lifetime, or a slow key's five seconds).
        Assert.Equal(BusyKeyRequests, ingest.Count);
        Assert.All(ingest, decision => Assert.True(decision.Tags["store"] is "redis" or "lease", decision.Tags["store"]));
        Assert.True(ingest.Count(decision => decision.Tags["store"] == "lease") > BusyKeyRequests / 2,
            string.Join(", ", ingest.GroupBy(decision => decision.Tags["store"]).Select(group => $"{group.Key}: {group.Count()}")));
    }

    private const int BusyKeyRequests = 200;

    // A busy key: ingest requests one after another, each a 201; the ingest decisions they were counted as. With
    // leases on (100 ms) they spend tokens taken ahead ("lease") after the first few.
    private async Task<List<MetricRecorder.Measurement>> BusyKeyDecisionsAsync(IDictionary<string, string?>? settings = null)
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, settings);
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        using var metrics = new MetricRecorder(factory, "tracker.rate_limit.decisions");
        for (var request = 0; request < BusyKeyRequests; request++)
        {
            using var response = await http.PostLogAsync(client.ApiKey, Log());
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        return [.. metrics.Of("tracker.rate_limit.decisions", ("policy", "ingest"))];
    }
}
