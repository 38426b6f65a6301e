using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Tracker.ApiService.Ingest;
using Tracker.ApiService.Usage;
using Tracker.Data;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;

namespace Tracker.Tests.Usage;

/// <summary>
/// The daily tier of the detailed rollups under the traffic it must survive: a late cell committed while a fold runs,
/// and logs for past days arriving at two instances while both fold days, again and again. (Its answers against a
/// brute force over the logs, before and after folding and after late logs, are in <see cref="BreakdownTests"/>.)
/// </summary>
[Collection(nameof(RealServers))]
public sealed class DailyCompactionTests(ServersFixture servers)
{
    private static readonly Dictionary<string, string?> Settings = new()
    {
        ["RateLimiting:Ingest:TokensPerSecond"] = "1000000",
        ["RateLimiting:Ingest:BurstLimit"] = "1000000",
    };

    [Fact]
    public async Task A_fold_that_cannot_see_a_late_cell_still_being_committed_leaves_its_day_marked()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, Settings);
        using var http = factory.CreateClient();
        var compaction = factory.Services.GetRequiredService<DailyCompaction>();
        var cs = factory.DatabaseConnectionString;
        var client = await http.RegisterNewAsync();
        var keyId = await ScalarGuidAsync(cs, $"SELECT id FROM api_keys WHERE client_id = '{client.Id}'");
        var day = DateOnly.FromDateTime(DateTime.UtcNow).AddDays(-3);
        var noon = day.ToDateTime(new TimeOnly(12, 0), DateTimeKind.Utc);

        // The day folded, then marked again by a late log.
        await PostAsync(http, client.ApiKey, noon);
        await compaction.RunOnceAsync(CancellationToken.None);
        await PostAsync(http, client.ApiKey, noon);
        Assert.Equal(1, await MarksAsync(cs, client.Id, day));

        // Ingest's statements for one more cell of the day, in a transaction that commits only after a fold began.
        await using var connection = new NpgsqlConnection(cs);
        await connection.OpenAsync();
        await using var writer = await connection.BeginTransactionAsync();
        var rollup = new DetailedRollup();
        rollup.Add(new LogRecord(client.Id, keyId, noon, IPAddress.Loopback, "GET", "/v1/orders"), noon);
        await using (var statements = new NpgsqlBatch(connection, writer))
        {
            foreach (var command in rollup.ToCommands(new AdmittedEndpoints(TimeProvider.System), DateTimeOffset.UtcNow))
            {
                statements.BatchCommands.Add(command);
            }

            await statements.ExecuteNonQueryAsync();
        }

        var folding = compaction.RunOnceAsync(CancellationToken.None);
        await Task.Delay(TimeSpan.FromSeconds(1));
        await writer.CommitAsync();
        await folding;

        // That fold could not count the cell, so the day must still be marked (read from the hourly cells) ...
        Assert.Equal((3, 2, 1), (await CountedAsync(cs, "usage_hourly_details", client.Id, day), await CountedAsync(cs, "usage_daily_details", client.Id, day),
            await MarksAsync(cs, client.Id, day)));

        // ... until the next fold, which counts it.
        await compaction.RunOnceAsync(CancellationToken.None);
        Assert.Equal((3, 3, 0), (await CountedAsync(cs, "usage_hourly_details", client.Id, day), await CountedAsync(cs, "usage_daily_details", client.Id, day),
            await MarksAsync(cs, client.Id, day)));
    }

    [Fact]
    public async Task Logs_for_past_days_that_arrive_while_two_instances_fold_them_are_each_counted_once()
    {
        await using var first = await TrackerApiFactory.CreateAsync(servers, Settings);
        await using var second = first.CreateSibling();
        HttpClient[] http = [first.CreateClient(), second.CreateClient()];
        DailyCompaction[] compactions = [first.Services.GetRequiredService<DailyCompaction>(), second.Services.GetRequiredService<DailyCompaction>()];
        var cs = first.DatabaseConnectionString;
        var client = await http[0].RegisterNewAsync();
        var today = DateOnly.FromDateTime(DateTime.UtcNow);
        var random = new Random(20261202);
        object Batch(int logs) => Enumerable.Range(0, logs).Select(_ => new
        {
            ipAddress = "203.0.113.7",
            endpoint = $"/v1/items/{random.Next(1, 6)}",
            method = "GET",
            statusCode = random.Next(2) == 0 ? 200 : 503,
            durationMs = random.Next(1, 500),
            // Days 2 to 6 before today: folded (a day is folded an hour after it ends) whatever the time of day.
            timestamp = new DateTimeOffset(today.AddDays(-random.Next(2, 7)).ToDateTime(TimeOnly.MinValue), TimeSpan.Zero)
                .AddMilliseconds(random.Next((int)TimeSpan.FromDays(1).TotalMilliseconds)).ToUnixTimeMilliseconds(),
        }).ToArray();

        using (var seed = await http[0].PostBatchAsync(client.ApiKey, (IEnumerable<object>)Batch(200)))
        {
            Assert.Equal(HttpStatusCode.Created, seed.StatusCode);
        }

        await compactions[0].RunOnceAsync(CancellationToken.None);
        var foldedThrough = new DateOnly(1970, 1, 1).AddDays(
            (int)await ScalarAsync(cs, "SELECT compacted_through - '1970-01-01'::date FROM usage_daily_compaction"));
        Assert.True(foldedThrough >= today.AddDays(-2), $"folded through {foldedThrough}");

        // Four senders of late logs, alternating instances, while each instance folds stale days in a loop.
        using var sending = new CancellationTokenSource();
        var folding = compactions.Select(compaction => Task.Run(async () =>
        {
            var runs = 0;
            while (!sending.IsCancellationRequested)
            {
                await compaction.RunOnceAsync(CancellationToken.None);
                runs++;
            }

            return runs;
        })).ToArray();
        var senders = Enumerable.Range(0, 4).Select(sender => Task.Run(async () =>
        {
            for (var batch = 0; batch < 15; batch++)
            {
                object logs;
                lock (random)
                {
                    logs = Batch(50);
                }

                using var response = await http[(sender + batch) % 2].PostBatchAsync(client.ApiKey, (IEnumerable<object>)logs);
                Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            }
        })).ToArray();
        await Task.WhenAll(senders);
        await sending.CancelAsync();
        Assert.All(await Task.WhenAll(folding), runs => Assert.True(runs > 1, $"{runs} compaction runs"));
        await compactions[1].RunOnceAsync(CancellationToken.None);

        // Every folded day holds exactly its logs, counts and latency sketches alike, and no mark is left.
        Assert.Equal(3_200, await ScalarAsync(cs, $"SELECT count(*) FROM logs WHERE client_id = '{client.Id}'"));
        Assert.Equal(0, await ScalarAsync(cs, "SELECT count(*) FROM usage_daily_stale"));
        var mismatches = await ScalarAsync(cs, $"""
            SELECT count(*) FROM (
                SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, count(*) AS logs FROM logs WHERE client_id = '{client.Id}' GROUP BY 1) AS logged
            FULL JOIN (
                SELECT day, sum(request_count) AS counted,
                       (SELECT sum(element & {(1L << LatencySketch.CountBits) - 1}) FROM usage_daily_details AS inner_detail
                        CROSS JOIN unnest(inner_detail.latency) AS element
                        WHERE inner_detail.client_id = '{client.Id}' AND inner_detail.day = detail.day) AS sketched
                FROM usage_daily_details AS detail WHERE client_id = '{client.Id}' GROUP BY day) AS folded USING (day)
            WHERE logs IS DISTINCT FROM counted OR logs IS DISTINCT FROM sketched
            """);
        Assert.Equal(0, mismatches);
        foreach (var instance in http)
        {
            instance.Dispose();
        }
    }

    private static async Task PostAsync(HttpClient http, string apiKey, DateTime at)
    {
        using var response = await http.PostLogAsync(apiKey, Log(at: new DateTimeOffset(at)));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    private static Task<long> MarksAsync(string cs, Guid clientId, DateOnly day) =>
        ScalarAsync(cs, $"SELECT count(*) FROM usage_daily_stale WHERE client_id = '{clientId}' AND day = '{day:yyyy-MM-dd}'");

    private static Task<long> CountedAsync(string cs, string table, Guid clientId, DateOnly day) => ScalarAsync(cs, $"""
        SELECT coalesce(sum(request_count), 0) FROM {table}
        WHERE client_id = '{clientId}' AND {(table == "usage_daily_details" ? $"day = '{day:yyyy-MM-dd}'" : $"(hour_start AT TIME ZONE 'UTC')::date = '{day:yyyy-MM-dd}'")}
        """);

    private static async Task<Guid> ScalarGuidAsync(string cs, string sql)
    {
        await using var connection = new NpgsqlConnection(cs);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (Guid)(await command.ExecuteScalarAsync())!;
    }
}
