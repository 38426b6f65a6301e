using System.Diagnostics;
using System.Net;
using Npgsql;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;

namespace Tracker.Tests.Usage;

/// <summary>
/// The analytics read only <c>usage_hourly</c>, never <c>logs</c>: with every query of the database (no cached
/// answers) they still answer, at once and correctly, while another transaction holds <c>logs</c> locked against
/// everyone.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class UsageReadsWithoutLogsTests(ServersFixture servers) : ApiTest(servers, new Dictionary<string, string?>
{
    ["Usage:CacheAnswers"] = "false",
})
{
    [Fact]
    public async Task Daily_and_top_answer_correctly_and_at_once_while_logs_is_locked_exclusively()
    {
        await UsageClient.AvoidDayBoundaryAsync();
        await UsageClient.AvoidHourBoundaryAsync();
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        using (var batch = await Http.PostBatchAsync(client.ApiKey, Enumerable.Range(0, 5).Select(_ => Log())))
        {
            Assert.Equal(HttpStatusCode.Created, batch.StatusCode);
        }

        await using var locker = new NpgsqlConnection(Factory.DatabaseConnectionString);
        await locker.OpenAsync();
        await using var transaction = await locker.BeginTransactionAsync();
        await using (var lockLogs = new NpgsqlCommand("LOCK TABLE logs IN ACCESS EXCLUSIVE MODE", locker, transaction))
        {
            await lockLogs.ExecuteNonQueryAsync();
        }

        // The control: the lock really stops anyone reading logs (the API's sessions wait up to 5 s, then fail).
        var blocked = await Assert.ThrowsAsync<PostgresException>(() =>
            ScalarAsync(Factory.DatabaseConnectionString + ";Options=-c lock_timeout=200", "SELECT count(*) FROM logs"));
        Assert.Equal(PostgresErrorCodes.LockNotAvailable, blocked.SqlState);

        var elapsed = Stopwatch.StartNew();
        var days = await Http.DailyAsync(token, days: 7);
        var top = await Http.TopAsync(token, hours: 1, limit: 3);
        elapsed.Stop();

        Assert.Equal(5, days.CountOn(UsageClient.TodayUtc));
        var busiest = Assert.Single(top);
        Assert.Equal((client.Id, 5L), (busiest.ClientId, busiest.TotalRequests));
        Assert.True(elapsed.Elapsed < TimeSpan.FromSeconds(2), $"The reads took {elapsed.Elapsed}, as if they waited for the lock on logs.");
    }
}
