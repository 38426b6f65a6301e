using System.Net;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.ApiClient;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.UsageClient;

namespace Tracker.Tests.Usage;

/// <summary>
/// Raw paths cannot multiply the rollups: ids are normalised, and past 100 distinct endpoints in a client's hour the
/// rest count under "{other}", with every log still counted. A log without the optional fields counts too.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class EndpointCapTests(ServersFixture servers) : ApiTest(servers)
{
    public override async Task InitializeAsync()
    {
        await AvoidHourBoundaryAsync();
        await base.InitializeAsync();
    }

    // The logs' time: within the hour that hours=1 reads, even a minute into it (a minute back was the hour before).
    private static DateTimeOffset CurrentHourStart()
    {
        var now = DateTimeOffset.UtcNow;
        return new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero);
    }

    [Fact]
    public async Task Past_100_endpoints_in_an_hour_the_rest_count_as_other_across_batches()
    {
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        var at = CurrentHourStart();
        // 60 endpoints in one batch (30 logs whose ids normalise to one of them), 90 more in the next (40 fit), then one
        // of the first again and a new one.
        await PostAllAsync(client, Enumerable.Range(0, 30).Select(index => Log(endpoint: $"/named/e001/{index}", at: at))
            .Concat(Enumerable.Range(0, 59).Select(index => Log(endpoint: $"/named/e{index:000}", at: at))));
        await PostAllAsync(client, Enumerable.Range(59, 90).Select(index => Log(endpoint: $"/named/e{index:000}", at: at)));
        await PostAllAsync(client, [Log(endpoint: "/named/e005", at: at), Log(endpoint: "/named/new", at: at)]);

        using var response = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/endpoints?hours=1&limit=100", token);
        var endpoints = (await DataAsync(response, HttpStatusCode.OK)).EnumerateArray()
            .Select(row => (Endpoint: row.GetProperty("endpoint").GetString()!, Count: row.GetProperty("count").GetInt64())).ToList();

        var cs = Factory.DatabaseConnectionString;
        Assert.Equal(181, await ScalarAsync(cs, $"SELECT sum(request_count) FROM usage_hourly_details WHERE client_id = '{client.Id}'"));
        Assert.Equal((Endpoint: "{other}", Count: 51L), endpoints[0]);
        Assert.Equal((Endpoint: "/named/e001/{id}", Count: 30L), endpoints[1]);
        Assert.Equal((Endpoint: "/named/e005", Count: 2L), endpoints[2]);
        // The first 99 named endpoints (in endpoint order within a batch), the id-normalised one, and "{other}"; the
        // answer holds at most 100 of them.
        Assert.Equal(101, await ScalarAsync(cs, $"SELECT count(DISTINCT endpoint) FROM usage_hourly_details WHERE client_id = '{client.Id}'"));
        Assert.Equal(100, endpoints.Count);
        Assert.DoesNotContain(endpoints, row => row.Endpoint is "/named/e099" or "/named/new");
        Assert.Equal(100, await ScalarAsync(cs, $"SELECT count(*) FROM usage_hourly_endpoints WHERE client_id = '{client.Id}'"));
        Assert.Equal(1, await ScalarAsync(cs, $"SELECT count(*) FROM usage_hourly_endpoints WHERE endpoint = '/named/e098'"));
        Assert.Equal(0, await ScalarAsync(cs, $"SELECT count(*) FROM usage_hourly_endpoints WHERE endpoint IN ('/named/e099', '/named/new')"));
    }

    [Fact]
    public async Task Logs_of_endpoints_already_admitted_this_hour_skip_the_caps_lookups_and_the_cap_still_holds()
    {
        var client = await Http.RegisterNewAsync();
        var at = CurrentHourStart();
        var cs = Factory.DatabaseConnectionString;
        await ExecuteAsync(cs, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
        await PostAllAsync(client, Enumerable.Range(0, 100).Select(index => Log(endpoint: $"/named/e{index:000}", at: at)));
        var capped = await CappedStatementsAsync();

        // Only admitted endpoints: no lookup. A new one with them: the cap, which sends it to "{other}"; and again.
        await PostAllAsync(client, [Log(endpoint: "/named/e005", at: at), Log(endpoint: "/named/e099", at: at), Log(endpoint: "/named/e005", at: at)]);
        Assert.Equal(capped, await CappedStatementsAsync());
        await PostAllAsync(client, [Log(endpoint: "/named/e005", at: at), Log(endpoint: "/named/new", at: at)]);
        await PostAllAsync(client, [Log(endpoint: "/named/new", at: at)]);
        Assert.Equal(capped + 2, await CappedStatementsAsync());

        Assert.Equal(106, await ScalarAsync(cs, $"SELECT sum(request_count) FROM usage_hourly_details WHERE client_id = '{client.Id}'"));
        Assert.Equal(4, await ScalarAsync(cs, $"SELECT sum(request_count) FROM usage_hourly_details WHERE client_id = '{client.Id}' AND endpoint = '/named/e005'"));
        Assert.Equal(2, await ScalarAsync(cs, $"SELECT sum(request_count) FROM usage_hourly_details WHERE client_id = '{client.Id}' AND endpoint = '{{other}}'"));
        Assert.Equal(100, await ScalarAsync(cs, $"SELECT count(*) FROM usage_hourly_endpoints WHERE client_id = '{client.Id}'"));

        Task<long> CappedStatementsAsync() => ScalarAsync(cs, """
            SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query LIKE '%INSERT INTO usage_hourly_endpoints%'
            """);
    }

    [Fact]
    public async Task A_log_without_status_or_duration_counts_with_no_status_class_and_no_percentiles()
    {
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        await PostAllAsync(client, [Log(endpoint: "/plain")]);

        using var response = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/endpoints", token);
        var row = Assert.Single((await DataAsync(response, HttpStatusCode.OK)).EnumerateArray());
        Assert.Equal(("GET", "/plain", 1L, 0L, 0L), (row.GetProperty("method").GetString()!, row.GetProperty("endpoint").GetString()!,
            row.GetProperty("count").GetInt64(), row.GetProperty("clientErrors").GetInt64(), row.GetProperty("serverErrors").GetInt64()));
        Assert.Equal(System.Text.Json.JsonValueKind.Null, row.GetProperty("p99").ValueKind);

        using var series = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/series?groupBy=status&days=1&percentiles=true", token);
        var line = Assert.Single((await DataAsync(series, HttpStatusCode.OK)).GetProperty("series").EnumerateArray());
        Assert.Equal(("none", 1L), (line.GetProperty("group").GetString(), line.GetProperty("total").GetInt64()));
    }

    [Fact]
    public async Task A_new_log_shows_in_the_breakdowns_within_the_freshness_bound()
    {
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        await PostAllAsync(client, [Log(endpoint: "/fresh")]);
        Assert.Equal(1, await EndpointCountAsync(token));

        await PostAllAsync(client, [Log(endpoint: "/fresh")]);
        // Throws if the second log does not show in time (the freshness bound is 2 s).
        await Poll.UntilAsync(async () => await EndpointCountAsync(token) == 2, TimeSpan.FromSeconds(3));
    }

    private async Task<long> EndpointCountAsync(string token)
    {
        using var response = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/endpoints?hours=1", token);
        return (await DataAsync(response, HttpStatusCode.OK)).EnumerateArray().Sum(row => row.GetProperty("count").GetInt64());
    }

    private async Task PostAllAsync(RegisteredClient client, IEnumerable<object> logs)
    {
        using var response = await Http.PostBatchAsync(client.ApiKey, logs);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }
}
