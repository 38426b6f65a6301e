using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Tracker.ApiService.Ingest;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.ProblemAssertions;

namespace Tracker.Tests.Ingest;

/// <summary>
/// Ingest against real PostgreSQL: what a 201 promises, and every way a request is refused. Two writer loops (the
/// default is one), so that concurrent requests also exercise parallel commits into the same rollup rows.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class IngestTests(ServersFixture servers)
    : ApiTest(servers, new Dictionary<string, string?> { ["Ingest:LingerMilliseconds"] = "20", ["Ingest:Writers"] = "2" })
{
    private RegisteredClient _client = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _client = await Http.RegisterNewAsync();
    }

    [Fact]
    public async Task A_201_means_the_log_is_in_postgres_with_its_rollup()
    {
        var at = DateTimeOffset.UtcNow.AddMinutes(-2);
        using var response = await Http.PostLogAsync(_client.ApiKey, Log(ip: "2001:db8::7", method: "patch", endpoint: "/v1/items/42", at: at));

        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("Log created successfully", body.GetProperty("message").GetString());
        Assert.Equal(JsonValueKind.Null, body.GetProperty("data").ValueKind);

        var cs = Factory.DatabaseConnectionString;
        Assert.Equal(1, await ScalarAsync(cs, $"""
            SELECT count(*) FROM logs WHERE client_id = '{_client.Id}' AND method = 'PATCH' AND endpoint = '/v1/items/42'
              AND ip_address = '2001:db8::7'::inet AND occurred_at = to_timestamp({at.ToUnixTimeMilliseconds()} / 1000.0)
            """));
        Assert.Equal(1, await ScalarAsync(cs, $"""
            SELECT sum(request_count) FROM usage_hourly_totals WHERE client_id = '{_client.Id}' AND hour_start = date_trunc('hour', to_timestamp({at.ToUnixTimeMilliseconds()} / 1000.0), 'UTC')
            """));
    }

    [Fact]
    public async Task A_batch_is_stored_whole_and_counted()
    {
        using var response = await Http.PostBatchAsync(_client.ApiKey, Enumerable.Range(0, 100).Select(index => Log(endpoint: $"/v1/items/{index}")));

        var data = await ApiClient.DataAsync(response, HttpStatusCode.Created);
        Assert.Equal(100, data.GetProperty("accepted").GetInt32());
        Assert.Equal(100, await CountLogsAsync(Factory.DatabaseConnectionString));
        Assert.Equal(100, await ScalarAsync(Factory.DatabaseConnectionString, "SELECT sum(request_count) FROM usage_hourly_totals"));
    }

    [Fact]
    public async Task Concurrent_requests_share_transactions_and_every_201_is_one_row()
    {
        var responses = await Task.WhenAll(Enumerable.Range(0, 200).Select(async index =>
        {
            using var response = await Http.PostLogAsync(_client.ApiKey, Log(endpoint: $"/v1/concurrent/{index}"));
            return response.StatusCode;
        }));

        Assert.All(responses, status => Assert.Equal(HttpStatusCode.Created, status));
        var cs = Factory.DatabaseConnectionString;
        Assert.Equal(200, await CountLogsAsync(cs));
        Assert.Equal(200, await ScalarAsync(cs, "SELECT count(DISTINCT endpoint) FROM logs"));
        // Rows written by one transaction share its id (xmin): fewer transactions than requests means batches formed.
        var transactions = await ScalarAsync(cs, "SELECT count(DISTINCT xmin::text) FROM logs");
        Assert.True(transactions < 100, $"{transactions} transactions for 200 requests");
    }

    [Fact]
    public async Task Invalid_logs_are_400s_naming_each_field_and_nothing_is_stored()
    {
        using var single = await Http.PostLogAsync(_client.ApiKey, new { ipAddress = "127.1", endpoint = "", method = "GE T", timestamp = 1 });
        var problem = await AssertProblemAsync(single, HttpStatusCode.BadRequest);
        Assert.Equal(["endpoint", "ipAddress", "method", "timestamp"], problem.GetProperty("errors").EnumerateObject().Select(error => error.Name).Order());

        var logs = Enumerable.Range(0, 5).Select(_ => Log()).ToList();
        logs[3] = Log(ip: "not-an-ip");
        using var batch = await Http.PostBatchAsync(_client.ApiKey, logs);
        var batchProblem = await AssertProblemAsync(batch, HttpStatusCode.BadRequest);
        Assert.Single(ErrorsFor(batchProblem, "logs[3].ipAddress"));

        Assert.Equal(0, await CountLogsAsync(Factory.DatabaseConnectionString));
    }

    [Fact]
    public async Task Unknown_properties_in_a_log_are_refused_by_name()
    {
        var log = new { ipAddress = "203.0.113.7", endpoint = "/v1/a", method = "GET", timestamp = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), userAgent = "curl" };

        using var single = await Http.PostLogAsync(_client.ApiKey, log);
        using var batch = await Http.PostBatchAsync(_client.ApiKey, [Log(), log]);

        Assert.Single(ErrorsFor(await AssertProblemAsync(single, HttpStatusCode.BadRequest), "userAgent"));
        Assert.Single(ErrorsFor(await AssertProblemAsync(batch, HttpStatusCode.BadRequest), "logs[1].userAgent"));
        Assert.Equal(0, await CountLogsAsync(Factory.DatabaseConnectionString));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1001)]
    public async Task A_batch_holds_1_to_1000_logs(int count)
    {
        using var response = await Http.PostBatchAsync(_client.ApiKey, Enumerable.Range(0, count).Select(_ => Log()));

        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal(["logs must hold 1 to 1000 logs."], ErrorsFor(problem, "logs"));
    }

    [Fact]
    public async Task A_batch_of_1000_long_logs_fits_the_batch_body_limit_but_a_single_log_route_keeps_64_KiB()
    {
        var endpoint = "/" + new string('e', 500);
        using var batch = await Http.PostBatchAsync(_client.ApiKey, Enumerable.Range(0, 1000).Select(_ => Log(endpoint: endpoint)));
        Assert.Equal(HttpStatusCode.Created, batch.StatusCode);
        Assert.Equal(1000, await CountLogsAsync(Factory.DatabaseConnectionString));

        using var tooLarge = await Http.PostLogAsync(_client.ApiKey, new { ipAddress = "203.0.113.7", endpoint = new string('e', 70_000), method = "GET", timestamp = 1 });
        await AssertProblemAsync(tooLarge, HttpStatusCode.RequestEntityTooLarge);
    }

    [Fact]
    public async Task Logs_need_an_api_key_not_a_token()
    {
        var token = await Http.LoginTokenAsync(_client);

        using var withToken = await Http.SendWithTokenAsync(HttpMethod.Post, "/api/v1/logs", token, Log());
        using var withoutCredentials = await Http.SendWithTokenAsync(HttpMethod.Post, "/api/v1/logs", null, Log());

        await AssertProblemAsync(withToken, HttpStatusCode.Unauthorized);
        await AssertProblemAsync(withoutCredentials, HttpStatusCode.Unauthorized);
        Assert.Equal(0, await CountLogsAsync(Factory.DatabaseConnectionString));
    }

    [Fact]
    public async Task A_row_the_database_refuses_costs_only_its_own_request()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(Servers, new Dictionary<string, string?> { ["Ingest:Writers"] = "1" });
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        var cs = factory.DatabaseConnectionString;
        // A day whose partition is missing: validation accepts it, PostgreSQL refuses the row.
        var missingDay = DateTime.UtcNow.Date.AddDays(-3);
        await ExecuteAsync(cs, $"DROP TABLE logs_p{missingDay:yyyyMMdd}");
        // The first request's commit holds the writer at the gate, so the poison request and the good ones queue up
        // behind it and are written as one batch.
        await using var gate = await CommitGate.CloseAsync(cs);
        using var committed = new MetricRecorder(factory, "tracker.ingest.logs.committed");
        var first = http.PostLogAsync(client.ApiKey, Log(endpoint: "/first"));
        var writer = factory.Services.GetRequiredService<LogBatchWriter>();
        await Poll.UntilAsync(async () => await CommitGate.WaitingAsync(Servers.Postgres.AdminConnectionString) > 0, TimeSpan.FromSeconds(10));
        var good = Enumerable.Range(0, 30).Select(index => http.PostLogAsync(client.ApiKey, Log(endpoint: $"/good/{index}"))).ToList();
        var poison = http.PostBatchAsync(client.ApiKey, [Log(endpoint: "/poison/1"), Log(endpoint: "/poison/2", at: new DateTimeOffset(missingDay.AddHours(12)))]);
        await Poll.UntilAsync(() => Task.FromResult(writer.QueuedLogs == 32), TimeSpan.FromSeconds(10));
        await gate.OpenAsync();

        var answers = await Task.WhenAll(good.Append(poison).Append(first));

        var poisonProblem = await AssertProblemAsync(await poison, HttpStatusCode.UnprocessableEntity);
        Assert.Equal("The database refused the logs.", poisonProblem.GetProperty("title").GetString());
        Assert.All(answers.Where(answer => answer != poison.Result), response => Assert.Equal(HttpStatusCode.Created, response.StatusCode));
        Assert.Equal(31, await CountLogsAsync(cs));
        Assert.Equal(31, await ScalarAsync(cs, "SELECT sum(request_count) FROM usage_hourly_totals"));
        Assert.Equal(0, await ScalarAsync(cs, "SELECT count(*) FROM logs WHERE endpoint LIKE '/poison/%'"));
        // The good requests shared the poison's batch, and were still committed together, in one transaction: the
        // refusal cost no other request a commit of its own.
        Assert.Equal([1.0, 30.0], committed.Of("tracker.ingest.logs.committed").Select(measurement => measurement.Value));
        foreach (var answer in answers)
        {
            answer.Dispose();
        }
    }
}
