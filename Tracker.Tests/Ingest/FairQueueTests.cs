using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.ProblemAssertions;

namespace Tracker.Tests.Ingest;

/// <summary>
/// One tenant flooding the ingest queue fills its own share and is refused at once; every other tenant still gets
/// in, and everything admitted commits. The writer is held at a <see cref="CommitGate"/> so the queue really fills.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class FairQueueTests(ServersFixture servers)
{
    [Fact]
    public async Task A_flooding_client_gets_429_for_its_excess_at_once_while_another_client_still_gets_in()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["Ingest:Writers"] = "1",
            ["Ingest:QueueCapacity"] = "1000",
            ["Ingest:ClientQueueSharePercent"] = "25",
            ["Ingest:CommitTimeoutSeconds"] = "60",
        });
        using var http = factory.CreateClient();
        var flooder = await http.RegisterNewAsync();
        var quiet = await http.RegisterNewAsync();
        await using var gate = await CommitGate.CloseAsync(factory.DatabaseConnectionString);
        var held = http.PostLogAsync(flooder.ApiKey, Log(endpoint: "/held"));
        await Poll.UntilAsync(async () => await CommitGate.WaitingAsync(servers.Postgres.AdminConnectionString) > 0, TimeSpan.FromSeconds(10));

        // 250 logs are the flooder's share of 1,000: two batches of 100 and one of 50 get in, the next is refused.
        var admitted = Enumerable.Range(0, 3).Select(index =>
            http.PostBatchAsync(flooder.ApiKey, Enumerable.Range(0, index < 2 ? 100 : 50).Select(_ => Log(endpoint: $"/flood/{index}")))).ToList();
        await Poll.UntilAsync(() => Task.FromResult(factory.Services.GetRequiredService<Tracker.ApiService.Ingest.LogBatchWriter>().QueuedLogs == 250), TimeSpan.FromSeconds(10));
        var stopwatch = Stopwatch.StartNew();
        using var excess = await http.PostBatchAsync(flooder.ApiKey, Enumerable.Range(0, 10).Select(_ => Log(endpoint: "/excess")));
        var refusedAfter = stopwatch.Elapsed;
        var fromQuiet = http.PostBatchAsync(quiet.ApiKey, Enumerable.Range(0, 100).Select(_ => Log(endpoint: "/quiet")));
        await Poll.UntilAsync(() => Task.FromResult(factory.Services.GetRequiredService<Tracker.ApiService.Ingest.LogBatchWriter>().QueuedLogs == 350), TimeSpan.FromSeconds(10));

        var problem = await AssertProblemAsync(excess, HttpStatusCode.TooManyRequests);
        Assert.NotNull(excess.Headers.RetryAfter);
        Assert.Equal("Too many logs waiting.", problem.GetProperty("title").GetString());
        Assert.True(refusedAfter < TimeSpan.FromSeconds(2), $"the excess waited {refusedAfter.TotalMilliseconds:F0} ms for its refusal");

        await gate.OpenAsync();
        using var quietAnswer = await fromQuiet;
        Assert.Equal(HttpStatusCode.Created, quietAnswer.StatusCode);
        foreach (var answer in await Task.WhenAll(admitted.Append(held)))
        {
            Assert.Equal(HttpStatusCode.Created, answer.StatusCode);
            answer.Dispose();
        }

        var cs = factory.DatabaseConnectionString;
        Assert.Equal(351, await CountLogsAsync(cs));
        Assert.Equal(0, await ScalarAsync(cs, "SELECT count(*) FROM logs WHERE endpoint = '/excess'"));
    }

    [Fact]
    public async Task Another_client_s_log_is_committed_ahead_of_a_backlog_queued_before_it()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["Ingest:Writers"] = "1",
            ["Ingest:MaxBatchSize"] = "100",
            ["Ingest:CommitTimeoutSeconds"] = "60",
        });
        using var http = factory.CreateClient();
        var flooder = await http.RegisterNewAsync();
        var quiet = await http.RegisterNewAsync();
        var writer = factory.Services.GetRequiredService<Tracker.ApiService.Ingest.LogBatchWriter>();
        await using var gate = await CommitGate.CloseAsync(factory.DatabaseConnectionString);
        var held = http.PostLogAsync(flooder.ApiKey, Log(endpoint: "/held"));
        await Poll.UntilAsync(async () => await CommitGate.WaitingAsync(servers.Postgres.AdminConnectionString) > 0, TimeSpan.FromSeconds(10));

        var backlog = new List<Task<HttpResponseMessage>>();
        for (var request = 0; request < 5; request++)
        {
            backlog.Add(http.PostBatchAsync(flooder.ApiKey, Enumerable.Range(0, 100).Select(_ => Log(endpoint: $"/backlog/{request}"))));
            var queued = (request + 1) * 100;
            await Poll.UntilAsync(() => Task.FromResult(writer.QueuedLogs == queued), TimeSpan.FromSeconds(10));
        }

        var single = http.PostLogAsync(quiet.ApiKey, Log(endpoint: "/quiet"));
        await Poll.UntilAsync(() => Task.FromResult(writer.QueuedLogs == 501), TimeSpan.FromSeconds(10));
        await gate.OpenAsync();
        foreach (var answer in await Task.WhenAll(backlog.Append(single).Append(held)))
        {
            Assert.Equal(HttpStatusCode.Created, answer.StatusCode);
            answer.Dispose();
        }

        // One writer commits batches one after another, so transaction ids (xmin) give the commit order. First in,
        // first out, the quiet client's log would wait for all five of the backlog's batches; served in turn, it goes
        // into the second, beside the backlog's second request, and three of the backlog's batches come after it.
        var committedAfterQuiet = await ScalarAsync(factory.DatabaseConnectionString, """
            SELECT count(DISTINCT xmin::text) FROM logs
            WHERE endpoint LIKE '/backlog/%' AND xmin::text::bigint > (SELECT xmin::text::bigint FROM logs WHERE endpoint = '/quiet')
            """);
        Assert.Equal(3, committedAfterQuiet);
    }
}
