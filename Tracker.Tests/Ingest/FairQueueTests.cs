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
    public async Task A_flooding_client_gets_429_for_its_excess_at_once_unread_while_another_client_still_gets_in()
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

        // A client holding its whole share is refused before its body is read: a body that is not even JSON gets the
        // same 429, while another client's gets its 400.
        using var unread = await PostRawBatchAsync(http, flooder.ApiKey, "{ not json");
        Assert.Equal("Too many logs waiting.", (await AssertProblemAsync(unread, HttpStatusCode.TooManyRequests)).GetProperty("title").GetString());
        using var read = await PostRawBatchAsync(http, quiet.ApiKey, "{ not json");
        Assert.Equal(HttpStatusCode.BadRequest, read.StatusCode);

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
    public async Task A_client_s_batches_beyond_its_bytes_in_flight_wait_unread_while_another_client_s_are_read_at_once()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["Ingest:MaxClientBatchBytesInFlight"] = "65536",
            ["Ingest:CommitTimeoutSeconds"] = "60",
        });
        using var http = factory.CreateClient();
        var flooder = await http.RegisterNewAsync();
        var quiet = await http.RegisterNewAsync();
        await using var gate = await CommitGate.CloseAsync(factory.DatabaseConnectionString, onlyClient: flooder.Id);
        // About 80 kB of body: all of the flooder's room, held until its commit.
        var endpoint = new string('x', 700);
        var held = http.PostBatchAsync(flooder.ApiKey, Enumerable.Range(0, 100).Select(_ => Log(endpoint: $"/held/{endpoint}")));
        await Poll.UntilAsync(async () => await CommitGate.WaitingAsync(servers.Postgres.AdminConnectionString) > 0, TimeSpan.FromSeconds(10));

        // Not JSON: read, it would be answered 400 at once. The flooder's waits unread; the quiet client's is read.
        var waiting = PostRawBatchAsync(http, flooder.ApiKey, "{ not json");
        using var read = await PostRawBatchAsync(http, quiet.ApiKey, "{ not json").WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.BadRequest, read.StatusCode);
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.False(waiting.IsCompleted, "the flooder's second batch was read while its first held all its room");

        await gate.OpenAsync();
        using var heldAnswer = await held;
        Assert.Equal(HttpStatusCode.Created, heldAnswer.StatusCode);
        using var waitedAnswer = await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.BadRequest, waitedAnswer.StatusCode);
    }

    [Fact]
    public async Task Long_logs_are_bounded_by_the_queue_s_bytes_a_client_s_share_then_the_whole_queue_far_below_its_log_count_and_all_admitted_commit()
    {
        // 1 MiB of queue, a quarter of it per client; a log with a 2,000-character endpoint is estimated at about 4 kB,
        // so bytes refuse long before the 100,000 logs the queue may hold.
        const long capacityBytes = 1_048_576;
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["Ingest:Writers"] = "1",
            ["Ingest:QueueCapacity"] = "100000",
            ["Ingest:QueueCapacityBytes"] = capacityBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Ingest:ClientQueueSharePercent"] = "25",
            ["Ingest:CommitTimeoutSeconds"] = "60",
        });
        using var http = factory.CreateClient();
        var writer = factory.Services.GetRequiredService<Tracker.ApiService.Ingest.LogBatchWriter>();
        var holder = await http.RegisterNewAsync();
        await using var gate = await CommitGate.CloseAsync(factory.DatabaseConnectionString);
        var held = http.PostLogAsync(holder.ApiKey, Log(endpoint: "/held"));
        await Poll.UntilAsync(async () => await CommitGate.WaitingAsync(servers.Postgres.AdminConnectionString) > 0, TimeSpan.FromSeconds(10));

        var admitted = new List<Task<HttpResponseMessage>>();
        var refusedEndpoints = new List<string>();
        var refusals = new List<(int Client, HttpStatusCode Status, string? Title)>();
        var admittedLogs = 0;
        for (var client = 0; client < 8 && !refusals.Any(refusal => refusal.Status == HttpStatusCode.ServiceUnavailable); client++)
        {
            var tenant = await http.RegisterNewAsync();
            for (var batch = 0; batch < 20; batch++)
            {
                var prefix = $"/c{client}/b{batch}/";
                var endpoint = prefix + new string('x', 2000 - prefix.Length);
                var queuedBefore = writer.QueuedLogs;
                var answer = http.PostBatchAsync(tenant.ApiKey, Enumerable.Range(0, 10).Select(_ => Log(endpoint: endpoint)));
                await Poll.UntilAsync(() => Task.FromResult(answer.IsCompleted || writer.QueuedLogs == queuedBefore + 10), TimeSpan.FromSeconds(10));
                Assert.True(writer.QueuedBytes <= capacityBytes, $"the queue holds {writer.QueuedBytes} bytes, over its {capacityBytes}");
                if (!answer.IsCompleted)
                {
                    admitted.Add(answer);
                    admittedLogs += 10;
                    continue;
                }

                using var refused = await answer;
                var problem = await AssertProblemAsync(refused, refused.StatusCode);
                refusals.Add((client, refused.StatusCode, problem.GetProperty("title").GetString()));
                refusedEndpoints.Add(endpoint);
                Assert.NotNull(refused.Headers.RetryAfter);
                break;
            }
        }

        // Each of the first clients filled its own quarter and heard 429 for its excess; a later one found the whole
        // queue full and heard 503. The logs queued then were a few hundred, of the 100,000 allowed.
        Assert.True(refusals.Count >= 4, $"refusals: {string.Join(", ", refusals)}");
        Assert.All(refusals.SkipLast(1), refusal => Assert.Equal((HttpStatusCode.TooManyRequests, "Too many logs waiting."), (refusal.Status, refusal.Title)));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refusals[^1].Status);
        Assert.InRange(writer.QueuedBytes, capacityBytes * 3 / 4, capacityBytes);
        Assert.InRange(writer.QueuedLogs, 100, 1_000);

        await gate.OpenAsync();
        using var heldAnswer = await held;
        Assert.Equal(HttpStatusCode.Created, heldAnswer.StatusCode);
        foreach (var answer in await Task.WhenAll(admitted))
        {
            Assert.Equal(HttpStatusCode.Created, answer.StatusCode);
            answer.Dispose();
        }

        var cs = factory.DatabaseConnectionString;
        Assert.Equal(admittedLogs + 1, await CountLogsAsync(cs));
        foreach (var endpoint in refusedEndpoints)
        {
            Assert.Equal(0, await ScalarAsync(cs, $"SELECT count(*) FROM logs WHERE endpoint = '{endpoint}'"));
        }

        Assert.Equal(0, writer.QueuedBytes);
    }

    private static async Task<HttpResponseMessage> PostRawBatchAsync(HttpClient http, string apiKey, string body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/logs/batch")
        {
            Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.TryAddWithoutValidation("X-API-Key", apiKey);
        return await http.SendAsync(request);
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

        // Small batches commit one after another (Writers = 1), so transaction ids (xmin) give the commit order. First
        // in, first out, the quiet client's log would wait for all five of the backlog's batches; served in turn, it
        // goes into the second, ahead of the backlog's first request, and four of the backlog's batches come after it.
        var committedAfterQuiet = await ScalarAsync(factory.DatabaseConnectionString, """
            SELECT count(DISTINCT xmin::text) FROM logs
            WHERE endpoint LIKE '/backlog/%' AND xmin::text::bigint > (SELECT xmin::text::bigint FROM logs WHERE endpoint = '/quiet')
            """);
        Assert.Equal(4, committedAfterQuiet);
    }

    [Fact]
    public async Task Another_client_s_log_commits_while_a_flooder_s_big_commit_is_still_in_flight()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["Ingest:Writers"] = "1",
            ["Ingest:MaxClientBytesPerBatch"] = "65536",
            ["Ingest:CommitTimeoutSeconds"] = "60",
        });
        using var http = factory.CreateClient();
        var flooder = await http.RegisterNewAsync();
        var quiet = await http.RegisterNewAsync();
        var writer = factory.Services.GetRequiredService<Tracker.ApiService.Ingest.LogBatchWriter>();
        // Only the flooder's commits are held: its first batch stays in flight, as a large commit does for a while.
        await using var gate = await CommitGate.CloseAsync(factory.DatabaseConnectionString, onlyClient: flooder.Id);
        var endpoint = new string('x', 500);
        var held = http.PostBatchAsync(flooder.ApiKey, Enumerable.Range(0, 100).Select(_ => Log(endpoint: $"/held/{endpoint}")));
        await Poll.UntilAsync(async () => await CommitGate.WaitingAsync(servers.Postgres.AdminConnectionString) > 0, TimeSpan.FromSeconds(10));
        var backlog = Enumerable.Range(0, 3)
            .Select(index => http.PostBatchAsync(flooder.ApiKey, Enumerable.Range(0, 100).Select(_ => Log(endpoint: $"/backlog/{index}/{endpoint}"))))
            .ToList();
        await Poll.UntilAsync(() => Task.FromResult(writer.QueuedLogs == 300), TimeSpan.FromSeconds(10));

        using var single = await http.PostLogAsync(quiet.ApiKey, Log(endpoint: "/quiet")).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(HttpStatusCode.Created, single.StatusCode);
        Assert.False(held.IsCompleted, "the flooder's batch was to stay in flight");
        await gate.OpenAsync();
        foreach (var answer in await Task.WhenAll(backlog.Append(held)))
        {
            Assert.Equal(HttpStatusCode.Created, answer.StatusCode);
            answer.Dispose();
        }

        Assert.Equal(401, await CountLogsAsync(factory.DatabaseConnectionString));
    }
}
