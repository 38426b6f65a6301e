using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.ProblemAssertions;

namespace Tracker.Tests.Ingest;

/// <summary>
/// Ingest when things go wrong: a full queue, PostgreSQL going away under load. The invariant checked after
/// each: every 201 is exactly one row, and nothing else was stored.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class IngestFaultTests(ServersFixture servers, ITestOutputHelper output)
{
    [Fact]
    public async Task A_full_queue_is_refused_at_once_with_Retry_After()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["Ingest:QueueCapacity"] = "5",
            ["Ingest:Writers"] = "1",
            ["Ingest:MaxBatchSize"] = "1",
            ["Ingest:CommitTimeoutSeconds"] = "3",
        });
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        using (var warm = await http.PostLogAsync(client.ApiKey, Log()))
        {
            Assert.Equal(HttpStatusCode.Created, warm.StatusCode);
        }

        await servers.Postgres.StopAsync();
        List<(HttpStatusCode Status, TimeSpan Elapsed, string? RetryAfter)> answers;
        try
        {
            answers = [.. await Task.WhenAll(Enumerable.Range(0, 30).Select(async index =>
            {
                var stopwatch = Stopwatch.StartNew();
                using var response = await http.PostLogAsync(client.ApiKey, Log(endpoint: $"/full/{index}"));
                var retryAfter = response.Headers.TryGetValues("Retry-After", out var values) ? values.Single() : null;
                if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
                {
                    await AssertProblemAsync(response, HttpStatusCode.ServiceUnavailable);
                }

                return (response.StatusCode, stopwatch.Elapsed, retryAfter);
            }))];
        }
        finally
        {
            await servers.Postgres.StartAsync();
        }

        Assert.All(answers, answer =>
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.Status);
            Assert.NotNull(answer.RetryAfter);
        });
        // Beyond the 5 queued and the 1 in the writer's hands, requests are refused without waiting.
        Assert.True(answers.Count(answer => answer.Elapsed < TimeSpan.FromSeconds(1)) >= 20,
            string.Join(", ", answers.Select(answer => answer.Elapsed.TotalMilliseconds.ToString("F0", System.Globalization.CultureInfo.InvariantCulture))));
        Assert.Equal(1, await CountLogsAsync(factory.DatabaseConnectionString));
    }

    [Fact]
    public async Task PostgreSQL_restarting_under_load_loses_no_acknowledged_log()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["Ingest:CommitTimeoutSeconds"] = "3",
        });
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();

        var acknowledged = 0;
        var unavailable = 0;
        var other = new List<HttpStatusCode>();
        using var stop = new CancellationTokenSource();
        var senders = Enumerable.Range(0, 16).Select(sender => Task.Run(async () =>
        {
            for (var sent = 0; !stop.IsCancellationRequested && sent < 5_000; sent++)
            {
                using var response = await http.PostLogAsync(client.ApiKey, Log(endpoint: $"/load/{sender}/{sent}"));
                switch (response.StatusCode)
                {
                    case HttpStatusCode.Created: Interlocked.Increment(ref acknowledged); break;
                    case HttpStatusCode.ServiceUnavailable: Interlocked.Increment(ref unavailable); break;
                    default: lock (other) { other.Add(response.StatusCode); } break;
                }
            }
        })).ToList();

        await Task.Delay(TimeSpan.FromSeconds(1));
        await servers.Postgres.StopAsync();
        await Task.Delay(TimeSpan.FromSeconds(4));
        await servers.Postgres.StartAsync();
        await Task.Delay(TimeSpan.FromSeconds(2));
        await stop.CancelAsync();
        await Task.WhenAll(senders);

        output.WriteLine($"201: {acknowledged}, 503: {unavailable}, other: {other.Count}");
        Assert.Empty(other);
        Assert.True(unavailable > 0, "the outage was long enough to answer some requests 503");
        Assert.True(acknowledged > 100, "logs were acknowledged before and after the outage");
        Assert.Equal(acknowledged, await CountLogsAsync(factory.DatabaseConnectionString));
        Assert.Equal(acknowledged, await ScalarAsync(factory.DatabaseConnectionString, "SELECT sum(request_count) FROM usage_hourly"));
    }

    [Fact]
    public async Task Queued_acknowledgement_answers_202_before_the_commit()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["Ingest:Acknowledge"] = "Queued",
        });
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();

        using var single = await http.PostLogAsync(client.ApiKey, Log());
        using var batch = await http.PostBatchAsync(client.ApiKey, [Log(), Log()]);

        Assert.Equal(HttpStatusCode.Accepted, single.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, batch.StatusCode);
        Assert.Equal(2, JsonDocument.Parse(await batch.Content.ReadAsStringAsync()).RootElement.GetProperty("data").GetProperty("accepted").GetInt32());
        var deadline = Stopwatch.StartNew();
        while (await CountLogsAsync(factory.DatabaseConnectionString) < 3 && deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(50);
        }

        Assert.Equal(3, await CountLogsAsync(factory.DatabaseConnectionString));
    }
}
