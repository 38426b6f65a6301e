using System.Net;
using System.Text.Json;
using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.ProblemAssertions;

namespace Tracker.Tests.Ingest;

/// <summary>
/// Exactly once, end to end: a log carrying the client's own id is stored and counted once, however many times, from
/// however many requests and instances, it arrives — decided by PostgreSQL in the transaction that stores it.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class LogIdTests(ServersFixture servers, ITestOutputHelper output)
{
    private static readonly DateTimeOffset At = DateTimeOffset.UtcNow.AddMinutes(-1);

    [Fact]
    public async Task The_same_id_sent_at_once_from_many_requests_and_two_instances_is_stored_and_counted_once()
    {
        await using var first = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?> { ["Ingest:Writers"] = "2" });
        await using var second = first.CreateSibling();
        using var one = first.CreateClient();
        using var two = second.CreateClient();
        var client = await one.RegisterNewAsync();

        var answers = await Task.WhenAll(Enumerable.Range(0, 40).Select(async index =>
        {
            var http = index % 2 == 0 ? one : two;
            using var response = index % 4 < 2
                ? await http.PostLogAsync(client.ApiKey, WithId("call-1"))
                : await http.PostBatchAsync(client.ApiKey, [WithId("call-1"), WithId($"other-{index}")]);
            return response.StatusCode;
        }));

        Assert.All(answers, status => Assert.Equal(HttpStatusCode.Created, status));
        var cs = first.DatabaseConnectionString;
        Assert.Equal(1, await ScalarAsync(cs, "SELECT count(*) FROM logs WHERE log_id = 'call-1'"));
        Assert.Equal(21, await CountLogsAsync(cs));
        Assert.Equal(21, await ScalarAsync(cs, "SELECT sum(request_count) FROM usage_hourly_totals"));
    }

    [Fact]
    public async Task A_batch_says_how_many_logs_were_stored_and_how_many_were_duplicates_also_within_itself()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers);
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();

        using var firstSend = await http.PostBatchAsync(client.ApiKey, [WithId("a"), WithId("b"), WithId("a"), Log(at: At), Log(at: At)]);
        using var retry = await http.PostBatchAsync(client.ApiKey, [WithId("a"), WithId("b"), WithId("c")]);

        var first = await ApiClient.DataAsync(firstSend, HttpStatusCode.Created);
        Assert.Equal((5, 4, 1), Counts(first));
        var again = await ApiClient.DataAsync(retry, HttpStatusCode.Created);
        Assert.Equal((3, 1, 2), Counts(again));
        var cs = factory.DatabaseConnectionString;
        // Logs without an id are stored every time, as before.
        Assert.Equal(5, await CountLogsAsync(cs));
        Assert.Equal(5, await ScalarAsync(cs, "SELECT sum(request_count) FROM usage_hourly_totals"));
        Assert.Equal(3, await ScalarAsync(cs, "SELECT count(DISTINCT log_id) FROM logs"));
    }

    [Fact]
    public async Task Ids_belong_to_one_client_and_one_time()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers);
        using var http = factory.CreateClient();
        var alice = await http.RegisterNewAsync();
        var bob = await http.RegisterNewAsync();

        using var fromAlice = await http.PostLogAsync(alice.ApiKey, WithId("shared"));
        using var fromBob = await http.PostLogAsync(bob.ApiKey, WithId("shared"));
        using var later = await http.PostLogAsync(alice.ApiKey, WithId("shared", At.AddSeconds(1)));

        Assert.Equal(HttpStatusCode.Created, fromAlice.StatusCode);
        Assert.Equal(HttpStatusCode.Created, fromBob.StatusCode);
        Assert.Equal(HttpStatusCode.Created, later.StatusCode);
        Assert.Equal(3, await CountLogsAsync(factory.DatabaseConnectionString));
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("tab\there")]
    [InlineData("é")]
    [InlineData("x12345678901234567890123456789012345678901234567890123456789012345")]
    public async Task An_id_that_is_not_1_to_64_visible_ascii_characters_is_a_400_naming_it(string id)
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers);
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();

        using var single = await http.PostLogAsync(client.ApiKey, WithId(id));
        using var batch = await http.PostBatchAsync(client.ApiKey, [WithId("fine"), WithId(id)]);

        Assert.Single(ErrorsFor(await AssertProblemAsync(single, HttpStatusCode.BadRequest), "id"));
        Assert.Single(ErrorsFor(await AssertProblemAsync(batch, HttpStatusCode.BadRequest), "logs[1].id"));
        Assert.Equal(0, await CountLogsAsync(factory.DatabaseConnectionString));
    }

    [Fact]
    public async Task Clients_retrying_every_non_201_through_a_PostgreSQL_restart_store_each_id_once()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["Ingest:CommitTimeoutSeconds"] = "2",
        });
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();

        var acknowledged = 0;
        var retries = 0;
        using var stop = new CancellationTokenSource();
        var senders = Enumerable.Range(0, 12).Select(sender => Task.Run(async () =>
        {
            var sent = 0;
            for (; !stop.IsCancellationRequested && sent < 2_000; sent++)
            {
                // Alternate single logs and small batches; each is retried, unchanged, until it is acknowledged.
                var logs = sent % 2 == 0
                    ? [WithId($"{sender}-{sent}")]
                    : Enumerable.Range(0, 3).Select(part => WithId($"{sender}-{sent}-{part}")).ToArray();
                while (true)
                {
                    using var response = logs.Length == 1
                        ? await http.PostLogAsync(client.ApiKey, logs[0])
                        : await http.PostBatchAsync(client.ApiKey, logs);
                    if (response.StatusCode == HttpStatusCode.Created)
                    {
                        Interlocked.Add(ref acknowledged, logs.Length);
                        break;
                    }

                    Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
                    Interlocked.Increment(ref retries);
                    await Task.Delay(50);
                }
            }

            return sent;
        })).ToList();

        await Poll.UntilAsync(() => Task.FromResult(Volatile.Read(ref acknowledged) >= 200), TimeSpan.FromSeconds(30));
        await servers.Postgres.StopAsync();
        try
        {
            await Poll.UntilAsync(() => Task.FromResult(Volatile.Read(ref retries) > 0), TimeSpan.FromSeconds(30));
        }
        finally
        {
            await servers.Postgres.StartAsync();
        }

        var atRestart = Volatile.Read(ref acknowledged);
        await Poll.UntilAsync(() => Task.FromResult(Volatile.Read(ref acknowledged) >= atRestart + 300), TimeSpan.FromSeconds(60));
        await stop.CancelAsync();
        await Task.WhenAll(senders).WaitAsync(TimeSpan.FromSeconds(60));

        var cs = factory.DatabaseConnectionString;
        output.WriteLine($"acknowledged logs: {acknowledged}, retried requests: {retries}");
        Assert.Equal(acknowledged, await CountLogsAsync(cs));
        Assert.Equal(acknowledged, await ScalarAsync(cs, "SELECT count(DISTINCT log_id) FROM logs"));
        Assert.Equal(acknowledged, await ScalarAsync(cs, "SELECT sum(request_count) FROM usage_hourly_totals"));
    }

    [Fact]
    public async Task Clients_retrying_on_another_instance_when_theirs_shuts_down_mid_load_store_each_id_once()
    {
        await using var staying = await TrackerApiFactory.CreateAsync(servers);
        var leaving = staying.CreateSibling();
        var leavingHttp = leaving.CreateClient();
        using var stayingHttp = staying.CreateClient();
        var client = await stayingHttp.RegisterNewAsync();
        var cs = staying.DatabaseConnectionString;
        var stopped = 0;

        var acknowledged = 0;
        var movedOver = 0;
        var senders = Enumerable.Range(0, 16).Select(sender => Task.Run(async () =>
        {
            for (var sent = 0; sent < 150; sent++)
            {
                var log = WithId($"{sender}-{sent}");
                // Each log goes to the instance that is shutting down until it is gone, then to the other; every
                // answer but 201 (a 503, a dropped connection) is retried, unchanged, on the other instance.
                while (true)
                {
                    var http = Volatile.Read(ref stopped) == 0 && sent % 2 == 0 ? leavingHttp : stayingHttp;
                    try
                    {
                        using var response = await http.PostLogAsync(client.ApiKey, log);
                        if (response.StatusCode == HttpStatusCode.Created)
                        {
                            Interlocked.Increment(ref acknowledged);
                            break;
                        }
                    }
                    catch (Exception exception) when (exception is HttpRequestException or ObjectDisposedException or TaskCanceledException or InvalidOperationException)
                    {
                    }

                    Interlocked.Increment(ref movedOver);
                    Volatile.Write(ref stopped, 1);
                }
            }
        })).ToList();

        await Poll.UntilAsync(() => Task.FromResult(Volatile.Read(ref acknowledged) >= 300), TimeSpan.FromSeconds(30));
        // The same graceful stop as SIGTERM: the host stops the server, then the writer drains what is queued.
        await leaving.DisposeAsync();
        Volatile.Write(ref stopped, 1);
        await Task.WhenAll(senders).WaitAsync(TimeSpan.FromSeconds(120));
        leavingHttp.Dispose();

        output.WriteLine($"acknowledged: {acknowledged}, moved over: {movedOver}");
        Assert.Equal(16 * 150, acknowledged);
        Assert.Equal(16 * 150, await CountLogsAsync(cs));
        Assert.Equal(16 * 150, await ScalarAsync(cs, "SELECT count(DISTINCT log_id) FROM logs"));
        Assert.Equal(16 * 150, await ScalarAsync(cs, "SELECT sum(request_count) FROM usage_hourly_totals"));
    }

    private static object WithId(string id, DateTimeOffset? at = null) => new
    {
        ipAddress = "203.0.113.7",
        endpoint = "/v1/orders",
        method = "POST",
        timestamp = (at ?? At).ToUnixTimeMilliseconds(),
        id,
    };

    private static (int Accepted, int Stored, int Duplicates) Counts(JsonElement data) =>
        (data.GetProperty("accepted").GetInt32(), data.GetProperty("stored").GetInt32(), data.GetProperty("duplicates").GetInt32());
}
