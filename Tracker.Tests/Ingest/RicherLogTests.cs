using System.Net;
using System.Net.Http.Json;
using System.Text;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.ProblemAssertions;

namespace Tracker.Tests.Ingest;

/// <summary>
/// The optional <c>statusCode</c> and <c>durationMs</c>: stored on both write paths (COPY, and INSERT for logs with
/// ids) with the key that sent the log, refused like every other field when out of range or of the wrong JSON type,
/// and absent from a log that does not carry them.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class RicherLogTests(ServersFixture servers) : ApiTest(servers)
{
    private static readonly DateTimeOffset At = DateTimeOffset.UtcNow.AddMinutes(-1);

    [Fact]
    public async Task Status_and_duration_are_stored_on_both_write_paths_with_the_sending_key()
    {
        var client = await Http.RegisterNewAsync();
        using var single = await Http.PostLogAsync(client.ApiKey, Richer("/copy/single", 204, 12.5));
        Assert.Equal(HttpStatusCode.Created, single.StatusCode);
        using var batch = await Http.PostBatchAsync(client.ApiKey, [
            Richer("/copy/batch", 503, 3_600_000), Richer("/insert/batch", 100, 0, id: "with-id"), Log(endpoint: "/copy/plain"),
            new { ipAddress = "203.0.113.7", endpoint = "/insert/plain", method = "GET", timestamp = At.ToUnixTimeMilliseconds(), id = "plain-id" },
        ]);
        Assert.Equal(HttpStatusCode.Created, batch.StatusCode);

        var cs = Factory.DatabaseConnectionString;
        var keyId = await TextAsync(cs, $"SELECT id::text FROM api_keys WHERE client_id = '{client.Id}'");
        Assert.Equal(
            "/copy/batch 503 3600000 | /copy/plain - - | /copy/single 204 12.5 | /insert/batch 100 0 | /insert/plain - -",
            await TextAsync(cs, """
                SELECT string_agg(endpoint || ' ' || coalesce(status_code::text, '-') || ' ' || coalesce(duration_ms::text, '-'), ' | ' ORDER BY endpoint)
                FROM logs
                """));
        Assert.Equal(5, await ScalarAsync(cs, $"SELECT count(*) FROM logs WHERE api_key_id = '{keyId}'"));
    }

    [Theory]
    [InlineData("99", "statusCode")]
    [InlineData("600", "statusCode")]
    [InlineData("200.5", "statusCode")]
    [InlineData("2e2", "statusCode")]
    [InlineData("\"200\"", "statusCode")]
    [InlineData("true", "statusCode")]
    [InlineData("-0.001", "durationMs")]
    [InlineData("3600000.001", "durationMs")]
    [InlineData("1e300", "durationMs")]
    [InlineData("\"12\"", "durationMs")]
    [InlineData("\"NaN\"", "durationMs")]
    public async Task An_out_of_range_or_mistyped_value_is_a_400_naming_the_field(string json, string field)
    {
        var client = await Http.RegisterNewAsync();
        var log = $$"""{"ipAddress":"203.0.113.7","endpoint":"/x","method":"GET","timestamp":{{At.ToUnixTimeMilliseconds()}},"{{field}}":{{json}}}""";

        using var single = await PostJsonAsync(client.ApiKey, "/api/v1/logs", log);
        var problem = await AssertProblemAsync(single, HttpStatusCode.BadRequest);
        Assert.NotEmpty(ErrorsFor(problem, field));

        using var batch = await PostJsonAsync(client.ApiKey, "/api/v1/logs/batch", $$"""{"logs":[{{ValidJson()}},{{log}}]}""");
        var batchProblem = await AssertProblemAsync(batch, HttpStatusCode.BadRequest);
        Assert.NotEmpty(ErrorsFor(batchProblem, $"logs[1].{field}"));
        Assert.Equal(0, await CountLogsAsync(Factory.DatabaseConnectionString));
    }

    [Theory]
    [InlineData("100", "0")]
    [InlineData("599", "3600000")]
    [InlineData("null", "null")]
    [InlineData("200", "0.0001")]
    [InlineData("200", "1e3")]
    // Negative zero and a subnormal: both pass validation as 0 or more, and the writer's latency sketch takes them.
    [InlineData("200", "-0")]
    [InlineData("200", "-0.0")]
    [InlineData("200", "1e-320")]
    public async Task The_edges_of_the_ranges_and_null_are_accepted(string status, string duration)
    {
        var client = await Http.RegisterNewAsync();
        var log = $$"""{"ipAddress":"203.0.113.7","endpoint":"/x","method":"GET","timestamp":{{At.ToUnixTimeMilliseconds()}},"statusCode":{{status}},"durationMs":{{duration}}}""";
        using var response = await PostJsonAsync(client.ApiKey, "/api/v1/logs", log);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(1, await CountLogsAsync(Factory.DatabaseConnectionString));
    }

    [Fact]
    public async Task The_same_idempotency_key_with_another_status_is_another_request()
    {
        var client = await Http.RegisterNewAsync();
        using var first = await SendWithKeyAsync(client.ApiKey, Richer("/x", 200, 1));
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        using var other = await SendWithKeyAsync(client.ApiKey, Richer("/x", 500, 1));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, other.StatusCode);
        using var replay = await SendWithKeyAsync(client.ApiKey, Richer("/x", 200, 1));
        Assert.Equal(HttpStatusCode.Created, replay.StatusCode);
        Assert.True(replay.Headers.Contains("Idempotent-Replayed"));
    }

    private static object Richer(string endpoint, int status, double duration, string? id = null) =>
        new { ipAddress = "203.0.113.7", endpoint, method = "GET", timestamp = At.ToUnixTimeMilliseconds(), statusCode = status, durationMs = duration, id };

    private static string ValidJson() =>
        $$"""{"ipAddress":"203.0.113.7","endpoint":"/ok","method":"GET","timestamp":{{At.ToUnixTimeMilliseconds()}}}""";

    private async Task<HttpResponseMessage> PostJsonAsync(string apiKey, string path, string json)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        request.Headers.TryAddWithoutValidation("X-API-Key", apiKey);
        return await Http.SendAsync(request);
    }

    private async Task<HttpResponseMessage> SendWithKeyAsync(string apiKey, object log)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/logs") { Content = JsonContent.Create(log) };
        request.Headers.TryAddWithoutValidation("X-API-Key", apiKey);
        request.Headers.TryAddWithoutValidation("Idempotency-Key", "richer-1");
        return await Http.SendAsync(request);
    }
}
