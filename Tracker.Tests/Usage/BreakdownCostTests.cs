using System.Net;
using Microsoft.Extensions.DependencyInjection;
using System.Text.Json;
using Npgsql;
using Tracker.Data;
using Tracker.ApiService.Usage;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.ApiClient;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.UsageClient;

namespace Tracker.Tests.Usage;

/// <summary>
/// A client with many rollup cells (backdated logs, rotated keys) costs the breakdown routes no more than their answer:
/// PostgreSQL groups the cells, and what comes back to the API is at most the answer's own rows, as
/// <c>pg_stat_statements</c> counts them. Ties at the cut are broken in code-point order (PostgreSQL's "C" collation),
/// as the answers list them.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class BreakdownCostTests(ServersFixture servers) : ApiTest(servers, new Dictionary<string, string?>
{
    ["Usage:CacheAnswers"] = "false",
})
{
    private const int Keys = 10;

    private static readonly string[] PercentileNames = ["p50", "p95", "p99"];

    public override async Task InitializeAsync()
    {
        await AvoidDayBoundaryAsync();
        await AvoidHourBoundaryAsync();
        await base.InitializeAsync();
    }

    [Fact]
    public async Task Many_cells_come_back_from_the_database_as_the_answers_rows_only()
    {
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        // 48 hours × 100 endpoints × 2 status classes × 10 keys: 96,000 cells, of 200 endpoints (even and odd hours differ).
        var cs = Factory.DatabaseConnectionString;
        await InsertCellsAsync(client.Id, "generate_series(0, 47)", endpoints: 100, statuses: "2, 5", Keys,
            name: "'/bulk/e' || (endpoint + hour % 2 * 100)", count: "1 + endpoint % 7", latency: "ARRAY[((40500 + endpoint % 50)::bigint << 40) | 1]");
        await ExecuteAsync(cs, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");

        var (endpoints, endpointRows) = await ReadAsync(token, "/api/v1/usages/endpoints?hours=48&limit=20");
        Assert.Equal(20, endpoints.GetArrayLength());
        var busiest = endpoints[0];
        // Endpoints 6, 13, …, 97 and 106, 113, …, 197 tie at 7 a cell; code-point order puts "/bulk/e106" first.
        Assert.Equal(("/bulk/e106", 24L * 2 * Keys * 7, 24L * Keys * 7),
            (busiest.GetProperty("endpoint").GetString(), busiest.GetProperty("count").GetInt64(), busiest.GetProperty("serverErrors").GetInt64()));
        Assert.InRange(endpointRows, 1, 100);

        var (byKey, keyRows) = await ReadAsync(token, "/api/v1/usages/series?granularity=hour&days=2&groupBy=key&limit=5&percentiles=true");
        var lines = byKey.GetProperty("series").EnumerateArray().ToList();
        Assert.Equal(5, lines.Count);
        var hours = lines[0].GetProperty("points").GetArrayLength();
        Assert.InRange(keyRows, 1, 5 * hours);

        var (byEndpoint, endpointLineRows) = await ReadAsync(token, "/api/v1/usages/series?days=3&groupBy=endpoint&limit=10");
        Assert.Equal(10, byEndpoint.GetProperty("series").GetArrayLength());
        Assert.InRange(endpointLineRows, 1, 10 * 3);
    }

    [Fact]
    public async Task Ties_at_the_cut_are_broken_in_code_point_order_beyond_the_basic_multilingual_plane()
    {
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        // Code-point order puts U+E000 before U+1F600; .NET's ordinal order would put the surrogate pair (U+D83D…) first.
        // Ordered by PostgreSQL's "C" collation, so that no per-row sort key costs a query over many groups.
        var names = Enumerable.Range(0, 75).SelectMany(index => new[] { $"/tie/\uE000{index:00}", $"/tie/\U0001F600{index:00}" }).ToList();
        await ExecuteAsync(Factory.DatabaseConnectionString, $"""
            INSERT INTO usage_hourly_details (client_id, hour_start, endpoint, method, status_class, api_key_id, request_count, latency)
            SELECT '{client.Id}', date_trunc('hour', now(), 'UTC'), name, 'GET', 2, '{Guid.NewGuid()}', 1, ARRAY[]::bigint[]
            FROM unnest(ARRAY[{string.Join(',', names.Select(name => $"'{name}'"))}]) AS name
            """);
        var byCodePoint = names.Order(CodePointOrder.Instance).ToList();

        using (var response = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/endpoints?hours=1&limit=100", token))
        {
            var endpoints = await DataAsync(response, HttpStatusCode.OK);
            Assert.Equal(byCodePoint.Take(100), endpoints.EnumerateArray().Select(row => row.GetProperty("endpoint").GetString()!));
        }

        using (var response = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/series?days=1&groupBy=endpoint&limit=50", token))
        {
            var series = await DataAsync(response, HttpStatusCode.OK);
            Assert.Equal(byCodePoint.Take(50).Select(name => "GET " + name),
                series.GetProperty("series").EnumerateArray().Select(line => line.GetProperty("group").GetString()!));
        }
    }

    [Theory]
    [InlineData("/api/v1/usages/endpoints?hours=720", "client_errors", "force_generic_plan", false)]
    [InlineData("/api/v1/usages/endpoints?hours=720", "client_errors", "force_custom_plan", false)]
    [InlineData("/api/v1/usages/series?days=30&groupBy=endpoint&percentiles=true", "width_bucket", "force_generic_plan", false)]
    [InlineData("/api/v1/usages/series?days=30&groupBy=endpoint&percentiles=true", "width_bucket", "force_custom_plan", false)]
    [InlineData("/api/v1/usages/endpoints?hours=720", "client_errors", "force_generic_plan", true)]
    [InlineData("/api/v1/usages/endpoints?hours=720", "client_errors", "force_custom_plan", true)]
    [InlineData("/api/v1/usages/series?days=30&groupBy=endpoint&percentiles=true", "width_bucket", "force_generic_plan", true)]
    [InlineData("/api/v1/usages/series?days=30&groupBy=endpoint&percentiles=true", "width_bucket", "force_custom_plan", true)]
    public async Task A_breakdown_reads_the_clients_cells_once_however_postgresql_plans_it(
        string path, string statementMark, string planCacheMode, bool folded)
    {
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        // A busy month: 29 days × 24 hours × 12 endpoints × 2 keys, 16,704 cells with a sketch each, stored oldest first
        // as ingest stores them, so reading them in key order visits each page once, however they are read.
        var cs = Factory.DatabaseConnectionString;
        await InsertCellsAsync(client.Id, "generate_series(29 * 24 - 1, 0, -1)", endpoints: 12, statuses: "2", keys: 2,
            name: "'/month/e' || endpoint", count: "1 + endpoint", latency: "ARRAY[((40400 + endpoint * 10)::bigint << 40) | (1 + endpoint)]");
        // With fresh statistics, PostgreSQL reads the cells through the primary key, as it would in production.
        await ExecuteAsync(cs, "ANALYZE usage_hourly_details");
        await ExecuteAsync(cs, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
        var once = await BlocksPerCallAsync("cardinality(latency)", 1, () => ScalarAsync(cs, $"""
            SELECT sum(request_count + cardinality(latency)) FROM usage_hourly_details
            WHERE client_id = '{client.Id}' AND hour_start >= now() - interval '31 days'
            """));

        if (folded)
        {
            // The cells were stored without ingest's marks: whatever was folded before is forgotten, and the whole
            // past days are folded into 12 × 2 daily cells each.
            var compaction = Factory.Services.GetRequiredService<DailyCompaction>();
            await compaction.ForgetAsync(CancellationToken.None);
            await compaction.RunOnceAsync(CancellationToken.None);
            await ExecuteAsync(cs, "ANALYZE usage_daily_details");
        }

        // An instance whose sessions plan every statement one way: generically (for any client, as PostgreSQL may do
        // from a prepared statement's sixth execution on; Npgsql prepares a statement on its fifth use on a
        // connection) or for the values given.
        await using var planned = Factory.CreateSibling(new Dictionary<string, string?>
        {
            ["ConnectionStrings:trackerdb"] = $"{cs};Options=-c plan_cache_mode={planCacheMode}",
        });
        using var http = planned.CreateClient();
        for (var call = 0; call < 6; call++)
        {
            await ReadAsync(http, token, path);
        }

        var perCall = await BlocksPerCallAsync(statementMark, 3, async () =>
        {
            for (var call = 0; call < 3; call++)
            {
                await ReadAsync(http, token, path);
            }

            return 0;
        });
        Assert.InRange(once, 100, long.MaxValue);
        // Folded, the 28 or 29 whole past days of the window are 24 times fewer cells.
        Assert.InRange(perCall, 1, folded ? once / 4 : once * 3 / 2);
    }

    [Fact]
    public async Task A_breakdown_unpacks_only_the_stored_sketches_of_the_groups_it_shows()
    {
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        // 40 endpoints × 48 hours: 1,920 cells, each with a full sketch of 1,100 buckets, stored compressed, out of line.
        await InsertCellsAsync(client.Id, "generate_series(0, 47)", endpoints: 40, statuses: "2", keys: 1,
            name: "'/fat/e' || endpoint", count: "100000 + endpoint",
            latency: "ARRAY(SELECT ((39650 + k)::bigint << 40) | (1 + ((k * 7919 + hour * 31 + endpoint) % 977)) FROM generate_series(0, 1099) AS k)");
        await ExecuteAsync(Factory.DatabaseConnectionString, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");

        var one = await BlocksPerCallAsync("client_errors", 1, async () => (await ReadAsync(token, "/api/v1/usages/endpoints?hours=48&limit=1")).RowsRead);
        var every = await BlocksPerCallAsync("client_errors", 1, async () => (await ReadAsync(token, "/api/v1/usages/endpoints?hours=48&limit=40")).RowsRead);
        Assert.True(one * 4 < every, $"limit=1 used {one} shared buffers, limit=40 used {every}");
    }

    // Who merges, for endpoints and then a series by endpoint, each with every group shown and with the busiest two.
    [Theory]
    [InlineData(4, 3, "api api api api")]
    [InlineData(4, 100, "api api api api")]
    [InlineData(4, 105, "database database api api")]
    [InlineData(24, 52, "database api database api")]
    public async Task Sketches_merged_by_the_api_or_by_the_database_give_the_same_percentiles(int endpoints, int elementsPerCell, string mergers)
    {
        // Requests bound elements: 9,600 and 10,080 a group (one array each in endpoints) around the bound of 10,000
        // an array; 119,808 in all around the bound of 100,000, with 9,984 in the busiest two.
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        // endpoints × 48 hours × 2 keys, cells of elementsPerCell elements, repeating buckets within a cell and across
        // cells as stored arrays do (merging is concatenating; only long arrays are compacted).
        var cs = Factory.DatabaseConnectionString;
        await InsertCellsAsync(client.Id, "generate_series(0, 47)", endpoints, statuses: "2", keys: 2,
            name: "'/merge/e' || endpoint", count: $"{elementsPerCell}", latency: $"""
                ARRAY(SELECT ((40300 + (hour * 7 + endpoint * 31 + element) % (50 + endpoint * 100))::bigint << 40) | (1 + element % 3)
                      FROM generate_series(0, {elementsPerCell} - 1) AS element)
                """);
        await ExecuteAsync(cs, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
        var elements = await ScalarAsync(cs, $"SELECT sum(cardinality(latency)) FROM usage_hourly_details WHERE client_id = '{client.Id}'");
        Assert.Equal(endpoints * 96L * elementsPerCell, elements);
        using var queries = new MetricRecorder(Factory, "tracker.usage.query.duration");

        // Brute force: every stored element of an endpoint's cells, summed per bucket.
        var expected = new Dictionary<string, LatencySketch>();
        await using (var connection = new NpgsqlConnection(cs))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"SELECT endpoint, latency FROM usage_hourly_details WHERE client_id = '{client.Id}'", connection);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                var endpoint = reader.GetString(0);
                if (!expected.TryGetValue(endpoint, out var sketch))
                {
                    expected[endpoint] = sketch = new LatencySketch();
                }

                sketch.Merge(reader.GetFieldValue<long[]>(1));
            }
        }

        // Every group shown (no filter on the cells), and only the busiest.
        foreach (var limit in new[] { endpoints, 2 })
        {
            var (rows, _) = await ReadAsync(token, $"/api/v1/usages/endpoints?hours=48&limit={limit}");
            Assert.Equal(limit, rows.GetArrayLength());
            foreach (var row in rows.EnumerateArray())
            {
                var sketch = expected[row.GetProperty("endpoint").GetString()!];
                Assert.Equal(new[] { sketch.Quantile(0.5), sketch.Quantile(0.95), sketch.Quantile(0.99) },
                    PercentileNames.Select(name => (double?)row.GetProperty(name).GetDouble()));
            }
        }

        var (all, _) = await ReadAsync(token, $"/api/v1/usages/series?days=3&groupBy=endpoint&limit={endpoints}&percentiles=true");
        var (busiest, _) = await ReadAsync(token, "/api/v1/usages/series?days=3&groupBy=endpoint&limit=2&percentiles=true");
        var lines = all.GetProperty("series").EnumerateArray().ToList();
        Assert.Equal(endpoints, lines.Count);
        Assert.Equal(2, busiest.GetProperty("series").GetArrayLength());
        foreach (var (line, same) in busiest.GetProperty("series").EnumerateArray().Zip(lines))
        {
            Assert.Equal(line.GetRawText(), same.GetRawText());
        }

        Assert.Equal(mergers, string.Join(' ', queries.Measurements.Select(query => query.Tags["sketches"])));

        Assert.Contains(lines.SelectMany(line => line.GetProperty("points").EnumerateArray()), point => point.GetProperty("p99").ValueKind == JsonValueKind.Number);
    }

    /// <summary>
    /// Stores a cell for each hour back (<paramref name="hours"/>, a set of integers), endpoint number, status class
    /// (<paramref name="statuses"/>, a list) and one of <paramref name="keys"/> new keys, as ingest would; the endpoint's
    /// name, its count and its packed sketch are SQL expressions of <c>hour</c>, <c>endpoint</c> and <c>status</c>.
    /// </summary>
    private Task InsertCellsAsync(
        Guid clientId, string hours, int endpoints, string statuses, int keys, string name, string count, string latency) =>
        ExecuteAsync(Factory.DatabaseConnectionString, $"""
            INSERT INTO usage_hourly_details (client_id, hour_start, endpoint, method, status_class, api_key_id, request_count, latency)
            SELECT '{clientId}', date_trunc('hour', now(), 'UTC') - make_interval(hours => hour), {name}, 'GET', status, key, {count}, {latency}
            FROM {hours} AS hour, generate_series(0, {endpoints - 1}) AS endpoint, unnest(ARRAY[{statuses}]::smallint[]) AS status,
                 unnest(ARRAY[{string.Join(',', Enumerable.Range(0, keys).Select(_ => $"'{Guid.NewGuid()}'"))}]::uuid[]) AS key
            """);

    /// <summary>The answer's data, and the rows the statements reading <c>usage_hourly_details</c> returned to the API meanwhile.</summary>
    private Task<(JsonElement Data, long RowsRead)> ReadAsync(string token, string path) => ReadAsync(Http, token, path);

    private async Task<(JsonElement Data, long RowsRead)> ReadAsync(HttpClient http, string token, string path)
    {
        const string RowsRead = """
            SELECT coalesce(sum(rows), 0) FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND query LIKE '%FROM usage_hourly_details%' AND query NOT LIKE '%pg_stat_statements%'
            """;
        var cs = Factory.DatabaseConnectionString;
        var before = await ScalarAsync(cs, RowsRead);
        using var response = await http.SendWithTokenAsync(HttpMethod.Get, path, token);
        var data = await DataAsync(response, HttpStatusCode.OK);
        var rows = await ScalarAsync(cs, RowsRead) - before;
        return (data, rows);
    }

    /// <summary>The shared buffers (hit or read) that statements whose text holds <paramref name="statementMark"/> used
    /// per call while <paramref name="calls"/> ran <paramref name="callCount"/> of them, as pg_stat_statements counts.</summary>
    private async Task<long> BlocksPerCallAsync(string statementMark, int callCount, Func<Task<long>> calls)
    {
        var blocks = $"""
            SELECT coalesce(sum(shared_blks_hit + shared_blks_read), 0) FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND query LIKE '%{statementMark}%' AND query NOT LIKE '%pg_stat_statements%'
            """;
        var cs = Factory.DatabaseConnectionString;
        var before = await ScalarAsync(cs, blocks);
        await calls();
        return (await ScalarAsync(cs, blocks) - before) / callCount;
    }
}
