using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Tracker.ApiService.Usage;
using Tracker.Tests.Ingest;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;

namespace Tracker.Tests.Usage;

/// <summary>
/// The per-client hourly totals under the traffic they must survive: ingest marks the hours it adds cells to, a fold
/// writes their totals, and in any one snapshot every hour's total (<c>usage_hourly_totals</c>) is its logs' count,
/// before a fold, after it, and while transactions that found an hour marked are still committing.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class HourlyTotalsFoldTests(ServersFixture servers)
{
    private static readonly Dictionary<string, string?> Settings = new()
    {
        ["RateLimiting:Ingest:TokensPerSecond"] = "1000000",
        ["RateLimiting:Ingest:BurstLimit"] = "1000000",
        // The hosted fold runs at start only: the tests fold when they mean to.
        ["Usage:HourlyTotalsFoldSeconds"] = "3600",
    };

    // Client-hours whose total in the view differs from their logs' count, in one snapshot of both.
    private const string Mismatches = """
        SELECT count(*) FROM (
            SELECT client_id, date_trunc('hour', occurred_at, 'UTC') AS hour_start, count(*) AS logs FROM logs GROUP BY 1, 2) AS logged
        FULL JOIN (SELECT client_id, hour_start, sum(request_count) AS request_count FROM usage_hourly_totals GROUP BY 1, 2) AS total
            USING (client_id, hour_start)
        WHERE logged.logs IS DISTINCT FROM total.request_count
        """;

    [Fact]
    public async Task A_fold_leaves_the_hour_marked_while_a_transaction_that_found_the_mark_is_still_committing()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, Settings);
        using var http = factory.CreateClient();
        var fold = factory.Services.GetRequiredService<HourlyTotalsFold>();
        var cs = factory.DatabaseConnectionString;
        var client = await http.RegisterNewAsync();
        var at = DateTimeOffset.UtcNow.AddHours(-2);

        // The hour marked by a committed log.
        using (var first = await http.PostLogAsync(client.ApiKey, Log(at: at)))
        {
            Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        }

        // A second log of the hour whose transaction has run its statements, the mark's DO NOTHING included, and waits
        // in COMMIT.
        await using var gate = await CommitGate.CloseAsync(cs, client.Id);
        var second = http.PostLogAsync(client.ApiKey, Log(at: at));
        await Poll.UntilAsync(async () => await CommitGate.WaitingAsync(servers.Postgres.AdminConnectionString) > 0, TimeSpan.FromSeconds(10));

        // The fold cannot take the marks while that transaction holds them: it gives up after its lock timeout, leaving
        // the hour marked. (A fold that took them would sum the hour's one committed log, remove the mark, and the
        // hour would read 1 once the second log committed.)
        var refused = await Assert.ThrowsAsync<PostgresException>(() => fold.RunOnceAsync(CancellationToken.None));
        Assert.Equal(PostgresErrorCodes.LockNotAvailable, refused.SqlState);

        await gate.OpenAsync();
        using (var secondAnswer = await second)
        {
            Assert.Equal(HttpStatusCode.Created, secondAnswer.StatusCode);
        }

        Assert.Equal(0, await ScalarAsync(cs, Mismatches));
        Assert.Equal(1, await FoldAsync(fold));
        Assert.Equal(0, await ScalarAsync(cs, "SELECT count(*) FROM usage_hourly_marks"));
        Assert.Equal(2, await ScalarAsync(cs, $"SELECT request_count FROM usage_hourly WHERE client_id = '{client.Id}'"));
        Assert.Equal(0, await ScalarAsync(cs, Mismatches));
    }

    [Fact]
    public async Task Daily_and_top_count_every_log_before_and_after_the_fold_which_leaves_the_current_hour_marked()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>(Settings)
        {
            ["Usage:CacheAnswers"] = "false",
        });
        using var http = factory.CreateClient();
        var fold = factory.Services.GetRequiredService<HourlyTotalsFold>();
        var cs = factory.DatabaseConnectionString;
        var busy = await http.RegisterNewAsync();
        var quiet = await http.RegisterNewAsync();
        // The current hour (and day) must stay current until the second fold, seconds from here.
        await UsageClient.AvoidDayBoundaryAsync();
        await UsageClient.AvoidHourBoundaryAsync();
        var now = DateTimeOffset.UtcNow;

        // Hours folded before more logs arrive for them, hours never folded, and one client each.
        await PostAsync(http, busy.ApiKey, now.AddHours(-30), 4);
        await PostAsync(http, quiet.ApiKey, now.AddHours(-30), 2);
        await FoldAsync(fold);
        await PostAsync(http, busy.ApiKey, now.AddHours(-30), 3);
        await PostAsync(http, busy.ApiKey, now, 2);
        await PostAsync(http, quiet.ApiKey, now.AddHours(-1), 6);

        var token = await http.LoginTokenAsync(busy);
        foreach (var folded in new[] { false, true })
        {
            if (folded)
            {
                Assert.Equal(2, await FoldAsync(fold));
                Assert.Equal(1, await ScalarAsync(cs, $"SELECT count(*) FROM usage_hourly_marks WHERE client_id = '{busy.Id}'"));
                Assert.Equal(0, await ScalarAsync(cs, $"SELECT count(*) FROM usage_hourly_marks WHERE client_id = '{quiet.Id}'"));
            }

            Assert.Equal(0, await ScalarAsync(cs, Mismatches));
            var daily = await http.DailyAsync(token);
            Assert.Equal(9, daily.Sum(day => day.Count));
            Assert.Equal(7, daily.CountOn(DateOnly.FromDateTime(now.AddHours(-30).UtcDateTime)));
            var top = await http.TopAsync(token, hours: 48);
            Assert.Equal([(busy.Id, 9L), (quiet.Id, 8L)], top.Select(entry => (entry.ClientId, entry.TotalRequests)));
        }
    }

    [Fact]
    public async Task A_mark_of_the_current_hour_is_folded_once_it_is_as_old_as_the_setting_and_not_before()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>(Settings)
        {
            ["Usage:CurrentHourFoldSeconds"] = "5",
        });
        using var http = factory.CreateClient();
        var fold = factory.Services.GetRequiredService<HourlyTotalsFold>();
        var cs = factory.DatabaseConnectionString;
        var client = await http.RegisterNewAsync();
        var marks = $"SELECT count(*) FROM usage_hourly_marks WHERE client_id = '{client.Id}'";
        // The hour must stay current until the second fold, seconds from here.
        await UsageClient.AvoidHourBoundaryAsync();

        await PostAsync(http, client.ApiKey, DateTimeOffset.UtcNow.AddSeconds(-1), 3);
        Assert.Equal(0, await FoldAsync(fold));
        Assert.Equal(1, await ScalarAsync(cs, marks));

        // Once the mark is 5 s old by the database's clock, the next fold writes the hour's total and removes it; not
        // sooner (the mark was made less than a second before the first fold).
        var folded = 0;
        var waited = await Poll.UntilAsync(async () => (folded += await FoldAsync(fold)) > 0, TimeSpan.FromSeconds(20));
        Assert.True(waited >= TimeSpan.FromSeconds(3), $"folded after {waited.TotalSeconds:0.0} s");
        Assert.Equal(1, folded);
        Assert.Equal(0, await ScalarAsync(cs, marks));
        Assert.Equal(3, await ScalarAsync(cs, $"SELECT request_count FROM usage_hourly WHERE client_id = '{client.Id}'"));
        Assert.Equal(0, await ScalarAsync(cs, Mismatches));

        // The client's next log marks the hour again, and the view counts it at once.
        await PostAsync(http, client.ApiKey, DateTimeOffset.UtcNow.AddSeconds(-1), 2);
        Assert.Equal(1, await ScalarAsync(cs, marks));
        Assert.Equal(0, await FoldAsync(fold));
        Assert.Equal(0, await ScalarAsync(cs, Mismatches));
        Assert.Equal(5, await ScalarAsync(cs, $"SELECT sum(request_count) FROM usage_hourly_totals WHERE client_id = '{client.Id}'"));
    }

    [Fact]
    public async Task Logs_sent_to_two_instances_while_both_fold_are_each_counted_once_in_every_snapshot()
    {
        // The current hour's marks are folded once a second old, so they are folded while batches mark them too.
        await using var first = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>(Settings)
        {
            ["Usage:CurrentHourFoldSeconds"] = "1",
        });
        await using var second = first.CreateSibling();
        HttpClient[] http = [first.CreateClient(), second.CreateClient()];
        HourlyTotalsFold[] folds = [first.Services.GetRequiredService<HourlyTotalsFold>(), second.Services.GetRequiredService<HourlyTotalsFold>()];
        var cs = first.DatabaseConnectionString;
        var clients = new[] { await http[0].RegisterNewAsync(), await http[1].RegisterNewAsync(), await http[0].RegisterNewAsync() };
        var now = DateTimeOffset.UtcNow;
        var random = new Random(20261203);

        // Six senders of batches over three clients, three past hours and the current one, alternating instances, while each instance folds
        // in a loop and a reader checks every hour's total against its logs, in one snapshot each time.
        using var sending = new CancellationTokenSource();
        var folding = folds.Select(fold => Task.Run(async () =>
        {
            var (runs, folded) = (0, 0);
            while (!sending.IsCancellationRequested)
            {
                try
                {
                    folded += await fold.RunOnceAsync(CancellationToken.None);
                    runs++;
                }
                catch (PostgresException exception) when (exception.SqlState == PostgresErrorCodes.LockNotAvailable)
                {
                    // Its lock timeout, behind an ingest transaction or the other instance's fold: as at any run.
                }
            }

            return (runs, folded);
        })).ToArray();
        var checks = Task.Run(async () =>
        {
            var (count, wrong) = (0, 0L);
            while (!sending.IsCancellationRequested)
            {
                wrong += await ScalarAsync(cs, Mismatches);
                count++;
            }

            return (count, wrong);
        });
        var senders = Enumerable.Range(0, 6).Select(sender => Task.Run(async () =>
        {
            for (var batch = 0; batch < 20; batch++)
            {
                int logs, hoursAgo;
                lock (random)
                {
                    (logs, hoursAgo) = (random.Next(1, 30), random.Next(0, 4));
                }

                var client = clients[(sender + batch) % clients.Length];
                using var response = await http[(sender + batch) % 2].PostBatchAsync(client.ApiKey,
                    Enumerable.Range(0, logs).Select(_ => Log(at: now.AddHours(-hoursAgo))));
                Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            }
        })).ToArray();
        await Task.WhenAll(senders);
        await sending.CancelAsync();
        var (checkCount, wrong) = await checks;
        var runs = await Task.WhenAll(folding);

        Assert.True(checkCount > 5, $"{checkCount} checks");
        Assert.Equal(0, wrong);
        Assert.True(runs.Sum(run => run.folded) > 0, string.Join(", ", runs.Select(run => $"{run.runs} runs folded {run.folded} marks")));
        // The last batches' marks of the current hour are folded once a second old.
        await Poll.UntilAsync(async () =>
        {
            await FoldAsync(folds[1]);
            return await ScalarAsync(cs, "SELECT count(*) FROM usage_hourly_marks") == 0;
        }, TimeSpan.FromSeconds(15));
        Assert.Equal(0, await ScalarAsync(cs, Mismatches));
        Assert.Equal(await CountLogsAsync(cs), await ScalarAsync(cs, "SELECT sum(request_count) FROM usage_hourly"));
        foreach (var instance in http)
        {
            instance.Dispose();
        }
    }

    // A fold the test means to run: its lock timeout is short, and autovacuum of the marks table takes a lock it waits
    // for, so it is tried again a few times.
    private static async Task<int> FoldAsync(HourlyTotalsFold fold)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await fold.RunOnceAsync(CancellationToken.None);
            }
            catch (PostgresException exception) when (exception.SqlState == PostgresErrorCodes.LockNotAvailable && attempt < 10)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200));
            }
        }
    }

    private static async Task PostAsync(HttpClient http, string apiKey, DateTimeOffset at, int logs)
    {
        using var response = await http.PostBatchAsync(apiKey, Enumerable.Range(0, logs).Select(_ => Log(at: at)));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }
}
