using System.Net;
using StackExchange.Redis;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;

namespace Tracker.Tests.Storage;

/// <summary>
/// A Redis that is up but refuses a command (here: a user not allowed to run scripts, as a misconfigured managed
/// Redis would) is not an outage the connection reports: every caller with a fallback still falls back, no request
/// gets a 500, and the refusal is logged once per caller, not once per request.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class RedisRefusalTests(ServersFixture servers) : IAsyncLifetime
{
    private readonly string _user = "tracker-noscripts-" + Guid.NewGuid().ToString("N")[..8];
    private readonly string _password = Guid.NewGuid().ToString("N");

    public async Task InitializeAsync()
    {
        await using var admin = await ConnectionMultiplexer.ConnectAsync(servers.Redis.ConnectionString);
        // Everything but scripts (EVAL, EVALSHA, SCRIPT ...): the limiter, usage generations and idempotency keys
        // all run scripts.
        await admin.GetDatabase().ExecuteAsync("ACL", "SETUSER", _user, "on", ">" + _password, "~*", "&*", "+@all", "-@scripting");
    }

    public async Task DisposeAsync()
    {
        await using var admin = await ConnectionMultiplexer.ConnectAsync(servers.Redis.ConnectionString);
        await admin.GetDatabase().ExecuteAsync("ACL", "DELUSER", _user);
    }

    [Fact]
    public async Task Commands_redis_refuses_fall_back_without_a_500_and_are_logged_once_per_caller()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["ConnectionStrings:cache"] = $"{servers.Redis.ConnectionString},user={_user},password={_password}",
        });
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        var token = await http.LoginTokenAsync(client);

        var statuses = new List<HttpStatusCode>();
        for (var round = 0; round < 5; round++)
        {
            using var logged = await http.PostLogAsync(client.ApiKey, Log());
            statuses.Add(logged.StatusCode);
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/logs") { Content = System.Net.Http.Json.JsonContent.Create(Log()) };
            request.Headers.TryAddWithoutValidation("X-API-Key", client.ApiKey);
            request.Headers.TryAddWithoutValidation("Idempotency-Key", $"refusal-{round}");
            using var withKey = await http.SendAsync(request);
            statuses.Add(withKey.StatusCode);
            using var read = await http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/daily", token);
            statuses.Add(read.StatusCode);
        }

        Assert.All(statuses, status => Assert.True(status is HttpStatusCode.OK or HttpStatusCode.Created, $"answered {(int)status}"));
        Assert.Equal(10, await CountLogsAsync(factory.DatabaseConnectionString));

        // The limiter refused by Redis on every request, yet said so once.
        var refusals = factory.Logs.Lines.Where(line => line.StartsWith("Warning", StringComparison.Ordinal) && line.Contains("Redis refused a command", StringComparison.Ordinal)).ToList();
        Assert.True(refusals.Count > 0, "No refusal was logged; Redis lines: " + string.Join("\n", factory.Logs.Lines.Where(line => line.Contains("Redis", StringComparison.Ordinal)).Take(20)));
        Assert.All(refusals.GroupBy(line => line.Split(" from ")[1].Split(' ')[0]), perCaller => Assert.Single(perCaller));
        Assert.Contains(refusals, line => line.Contains("NOPERM", StringComparison.Ordinal));
        Assert.DoesNotContain(factory.Logs.Lines, line => line.StartsWith("Error", StringComparison.Ordinal) || line.StartsWith("Critical", StringComparison.Ordinal));
    }
}
