using System.Diagnostics;
using System.Net;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.ProblemAssertions;

namespace Tracker.Tests.Ingest;

/// <summary>
/// The connection to PostgreSQL dies while COMMIT is in flight, so the API cannot know whether the batch was
/// stored. Produced for real: the API reaches PostgreSQL through <see cref="FaultyTcpProxy"/>, a deferred trigger
/// makes the server spend two seconds in COMMIT, and the proxy cuts the connection meanwhile. The server then
/// finishes the COMMIT for a client that is gone.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class UncertainCommitTests(ServersFixture servers) : IAsyncLifetime
{
    private TrackerApiFactory _setup = null!;
    private FaultyTcpProxy _proxy = null!;

    public async Task InitializeAsync()
    {
        _setup = await TrackerApiFactory.CreateAsync(servers);
        _proxy = new FaultyTcpProxy(servers.Postgres.Port);
        // Deferred constraint triggers run inside COMMIT: the transaction stays "in progress", its rows invisible to
        // everyone else, for two seconds after the client sent COMMIT.
        await ExecuteAsync(_setup.DatabaseConnectionString, """
            CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT OR UPDATE ON usage_hourly_details
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();
            """);
    }

    public async Task DisposeAsync()
    {
        await _proxy.DisposeAsync();
        await _setup.DisposeAsync();
    }

    [Fact]
    public async Task A_commit_still_in_progress_when_the_connection_died_is_stored_once_never_twice()
    {
        await using var api = _setup.CreateSibling(new Dictionary<string, string?>
        {
            ["ConnectionStrings:trackerdb"] = _proxy.Route(_setup.DatabaseConnectionString),
            ["Ingest:CommitTimeoutSeconds"] = "20",
        });
        using var http = api.CreateClient();
        var client = await http.RegisterNewAsync();

        var sending = http.PostLogAsync(client.ApiKey, Log(endpoint: "/uncertain"));
        await WaitForCommitInProgressAsync();
        _proxy.CutAll();

        using var response = await sending;
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        // The check after the cut must not take "not visible yet" for "not committed" while the old backend goes on
        // committing: retrying then would store it twice. (It ends that backend first, then asks.)
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal(1, await CountLogsAsync(_setup.DatabaseConnectionString));
        Assert.Equal(1, await ScalarAsync(_setup.DatabaseConnectionString, "SELECT sum(request_count) FROM usage_hourly_totals"));
    }

    [Fact]
    public async Task While_an_unknown_outcome_cannot_be_checked_other_requests_are_answered_by_their_deadline()
    {
        await using var api = _setup.CreateSibling(new Dictionary<string, string?>
        {
            ["ConnectionStrings:trackerdb"] = _proxy.Route(_setup.DatabaseConnectionString),
            ["Ingest:CommitTimeoutSeconds"] = "2",
        });
        using var http = api.CreateClient();
        var client = await http.RegisterNewAsync();
        var uncertain = TimedAsync(() => http.PostLogAsync(client.ApiKey, Log(endpoint: "/uncertain")));
        await WaitForCommitInProgressAsync();
        _proxy.RefuseNew = true;
        _proxy.CutAll();
        var other = await TimedAsync(() => http.PostLogAsync(client.ApiKey, Log(endpoint: "/other")));
        var first = await uncertain;
        // PostgreSQL is unreachable far longer than the commit timeout; nobody may wait for it.
        Assert.True(other.Elapsed < TimeSpan.FromSeconds(8), $"the other request waited {other.Elapsed.TotalSeconds:F1} s");
        Assert.True(first.Elapsed < TimeSpan.FromSeconds(10), $"the uncertain request waited {first.Elapsed.TotalSeconds:F1} s");
        await AssertProblemAsync(other.Response, HttpStatusCode.ServiceUnavailable);
        await AssertProblemAsync(first.Response, HttpStatusCode.ServiceUnavailable);
        Assert.NotNull(first.Response.Headers.RetryAfter);

        _proxy.RefuseNew = false;
        // The server finished the first COMMIT; the outcome once learned must not lead to a second copy.
        await Task.Delay(TimeSpan.FromSeconds(4));
        Assert.Equal(1, await ScalarAsync(_setup.DatabaseConnectionString, "SELECT count(*) FROM logs WHERE endpoint = '/uncertain'"));
        Assert.Equal(0, await ScalarAsync(_setup.DatabaseConnectionString, "SELECT count(*) FROM logs WHERE endpoint = '/other'"));
        first.Response.Dispose();
        other.Response.Dispose();
    }

    private Task<TimeSpan> WaitForCommitInProgressAsync() => Poll.UntilAsync(async () => await ScalarAsync(_setup.Servers.Postgres.AdminConnectionString, """
        SELECT count(*) FROM pg_stat_activity WHERE query = 'COMMIT' AND wait_event = 'PgSleep'
        """) > 0, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20));

    private static async Task<(HttpResponseMessage Response, TimeSpan Elapsed)> TimedAsync(Func<Task<HttpResponseMessage>> send)
    {
        var stopwatch = Stopwatch.StartNew();
        var response = await send().WaitAsync(TimeSpan.FromSeconds(30));
        return (response, stopwatch.Elapsed);
    }
}
