using System.Net;
using Tracker.Data;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.ApiClient;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.UsageClient;

namespace Tracker.Tests.Usage;

/// <summary>
/// A busy cell is merged by many commits: its stored sketch grows by concatenation and is compacted in PostgreSQL,
/// and its percentiles stay within 1% of the exact ones.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class SketchCompactionTests(ServersFixture servers) : ApiTest(servers)
{
    private static readonly (double Q, string Name)[] Percentiles = [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")];

    public override async Task InitializeAsync()
    {
        await AvoidHourBoundaryAsync();
        await base.InitializeAsync();
    }

    [Fact]
    public async Task A_cell_merged_by_many_commits_is_compacted_and_keeps_its_accuracy()
    {
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        var random = new Random(16);
        var durations = new List<double>();
        for (var batch = 0; batch < 40; batch++)
        {
            var logs = Enumerable.Range(0, 25).Select(_ => Math.Round(Math.Exp(random.NextDouble() * 3 + 2), 4)).ToList();
            durations.AddRange(logs);
            using var response = await Http.PostBatchAsync(client.ApiKey, logs.Select(duration => new
            {
                ipAddress = "203.0.113.7", endpoint = "/busy", method = "GET", timestamp = DateTimeOffset.UtcNow.AddSeconds(-1).ToUnixTimeMilliseconds(),
                statusCode = 200, durationMs = duration,
            }));
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        var cs = Factory.DatabaseConnectionString;
        var stored = await ScalarAsync(cs, $"SELECT cardinality(latency) FROM usage_hourly_details WHERE client_id = '{client.Id}'");
        // 40 commits of about 25 buckets each (of some 150 the durations span): without compaction the array would hold
        // about 1,000 elements.
        Assert.True(stored <= LatencySketch.CompactAbove + 25, $"{stored} elements stored");
        Assert.Equal(1_000, await ScalarAsync(cs,
            $"SELECT sum(element & {(1L << LatencySketch.CountBits) - 1}) FROM usage_hourly_details, unnest(latency) AS element WHERE client_id = '{client.Id}'"));

        using var answer = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/endpoints?hours=1", token);
        var row = Assert.Single((await DataAsync(answer, HttpStatusCode.OK)).EnumerateArray());
        var sorted = durations.Order().ToList();
        foreach (var (q, name) in Percentiles)
        {
            LatencySketchTests.AssertWithinAccuracy(LatencySketchTests.ExactQuantile(sorted, q), row.GetProperty(name).GetDouble(), name);
        }
    }
}
