using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;
using Tracker.ApiService.Ingest;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.ProblemAssertions;

namespace Tracker.Tests.Ingest;

/// <summary>
/// The <c>Idempotency-Key</c> header on the ingest routes, against real PostgreSQL and Redis: a repeat gets the
/// original answer and stores nothing, a repeat in flight gets 409, another body 422; and storing once holds even
/// when Redis has forgotten the key.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class IdempotencyKeyTests(ServersFixture servers) : ApiTest(servers, new Dictionary<string, string?> { ["Ingest:Writers"] = "1" })
{
    private static readonly DateTimeOffset At = DateTimeOffset.UtcNow.AddMinutes(-1);
    private RegisteredClient _client = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _client = await Http.RegisterNewAsync();
    }

    [Fact]
    public async Task A_repeat_of_a_completed_request_gets_the_original_answer_and_stores_nothing()
    {
        var logs = Enumerable.Range(0, 3).Select(index => Log(endpoint: $"/paid/{index}", at: At)).ToArray();

        using var first = await SendBatchAsync("order-7", logs);
        var firstBody = await first.Content.ReadAsStringAsync();
        using var repeat = await SendBatchAsync("\"order-7\"", logs);

        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal(HttpStatusCode.Created, repeat.StatusCode);
        Assert.Equal(firstBody, await repeat.Content.ReadAsStringAsync());
        Assert.Contains("\"stored\":3", firstBody, StringComparison.Ordinal);
        Assert.Equal(["true"], repeat.Headers.GetValues(Ingestion.ReplayedHeader));
        Assert.False(first.Headers.Contains(Ingestion.ReplayedHeader));
        Assert.Equal(3, await CountLogsAsync(Factory.DatabaseConnectionString));
        Assert.Equal(3, await ScalarAsync(Factory.DatabaseConnectionString, "SELECT sum(request_count) FROM usage_hourly_totals"));
    }

    [Fact]
    public async Task Once_redis_has_forgotten_the_key_a_repeat_is_processed_again_and_still_stores_nothing_twice()
    {
        var logs = Enumerable.Range(0, 3).Select(index => Log(endpoint: $"/paid/{index}", at: At)).ToArray();
        using (var first = await SendBatchAsync("order-8", logs))
        {
            Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        }

        await using (var redis = await ConnectionMultiplexer.ConnectAsync(Servers.Redis.ConnectionString + ",allowAdmin=true"))
        {
            var server = redis.GetServers()[0];
            foreach (var key in server.Keys(pattern: $"tracker:idempotency:{_client.Id:N}:*"))
            {
                await redis.GetDatabase().KeyDeleteAsync(key);
            }
        }

        using var repeat = await SendBatchAsync("order-8", logs);

        var data = await ApiClient.DataAsync(repeat, HttpStatusCode.Created);
        Assert.Equal(0, data.GetProperty("stored").GetInt32());
        Assert.Equal(3, data.GetProperty("duplicates").GetInt32());
        Assert.Equal(3, await CountLogsAsync(Factory.DatabaseConnectionString));
        Assert.Equal(3, await ScalarAsync(Factory.DatabaseConnectionString, "SELECT sum(request_count) FROM usage_hourly_totals"));
    }

    [Fact]
    public async Task A_repeat_while_the_first_is_in_flight_gets_409_and_the_first_still_completes()
    {
        await using var gate = await CommitGate.CloseAsync(Factory.DatabaseConnectionString);
        var first = SendSingleAsync("call-9", Log(at: At));
        await Poll.UntilAsync(async () => await CommitGate.WaitingAsync(Servers.Postgres.AdminConnectionString) > 0, TimeSpan.FromSeconds(10));

        using var repeat = await SendSingleAsync("call-9", Log(at: At));
        await AssertProblemAsync(repeat, HttpStatusCode.Conflict);
        await gate.OpenAsync();

        using var firstAnswer = await first;
        Assert.Equal(HttpStatusCode.Created, firstAnswer.StatusCode);
        using var afterwards = await SendSingleAsync("call-9", Log(at: At));
        Assert.Equal(HttpStatusCode.Created, afterwards.StatusCode);
        Assert.Equal(1, await CountLogsAsync(Factory.DatabaseConnectionString));
    }

    [Fact]
    public async Task The_same_key_with_other_logs_or_on_the_other_route_is_a_422()
    {
        using (var first = await SendSingleAsync("call-10", Log(endpoint: "/a", at: At)))
        {
            Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        }

        using var otherBody = await SendSingleAsync("call-10", Log(endpoint: "/b", at: At));
        using var otherRoute = await SendBatchAsync("call-10", [Log(endpoint: "/a", at: At)]);

        await AssertProblemAsync(otherBody, HttpStatusCode.UnprocessableEntity);
        await AssertProblemAsync(otherRoute, HttpStatusCode.UnprocessableEntity);
        Assert.Equal(1, await CountLogsAsync(Factory.DatabaseConnectionString));
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("\"\"")]
    public async Task A_malformed_key_is_a_400_naming_the_header(string key)
    {
        using var response = await SendSingleAsync(key, Log(at: At));

        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains("Idempotency-Key", problem.GetProperty("title").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, await CountLogsAsync(Factory.DatabaseConnectionString));
    }

    [Fact]
    public async Task Keys_belong_to_one_client()
    {
        var other = await Http.RegisterNewAsync();
        using var mine = await SendSingleAsync("shared-key", Log(endpoint: "/mine", at: At));
        using var theirs = await SendSingleAsync("shared-key", Log(endpoint: "/theirs", at: At), other.ApiKey);

        Assert.Equal(HttpStatusCode.Created, mine.StatusCode);
        Assert.Equal(HttpStatusCode.Created, theirs.StatusCode);
        Assert.Equal(2, await CountLogsAsync(Factory.DatabaseConnectionString));
    }

    private Task<HttpResponseMessage> SendSingleAsync(string key, object log, string? apiKey = null) =>
        SendAsync("/api/v1/logs", key, log, apiKey);

    private Task<HttpResponseMessage> SendBatchAsync(string key, object[] logs) => SendAsync("/api/v1/logs/batch", key, new { logs }, null);

    private async Task<HttpResponseMessage> SendAsync(string path, string key, object body, string? apiKey)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        request.Headers.TryAddWithoutValidation("X-API-Key", apiKey ?? _client.ApiKey);
        request.Headers.TryAddWithoutValidation("Idempotency-Key", key);
        return await Http.SendAsync(request);
    }
}
