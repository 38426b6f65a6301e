using System.Globalization;
using System.Net;
using StackExchange.Redis;
using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Tracker.Tests.Storage;

/// <summary>
/// <c>/health</c> needs no credential, so whoever can reach it must not be able to turn each hit into a database
/// query and a Redis command: concurrent and back-to-back probes share one check.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class ReadinessCacheTests(ServersFixture servers, ITestOutputHelper output) : ApiTest(servers)
{
    [Fact]
    public async Task Fifty_concurrent_health_probes_cause_at_most_a_couple_of_real_checks()
    {
        using (var warm = await Http.GetAsync(new Uri("/health", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
        }

        await using var redis = await ConnectionMultiplexer.ConnectAsync(Servers.Redis.ConnectionString + ",allowAdmin=true");
        var server = redis.GetServer(redis.GetEndPoints().Single());
        var before = await PingCallsAsync(server);

        var statuses = await Task.WhenAll(Enumerable.Range(0, 50).Select(async _ =>
        {
            using var response = await Http.GetAsync(new Uri("/health", UriKind.Relative));
            return response.StatusCode;
        }));

        var pings = await PingCallsAsync(server) - before;
        output.WriteLine($"{pings} Redis PING(s) for 50 probes");
        Assert.All(statuses, status => Assert.Equal(HttpStatusCode.OK, status));
        Assert.InRange(pings, 0, 3);
    }

    private static async Task<long> PingCallsAsync(IServer server)
    {
        var stats = await server.InfoAsync("commandstats");
        var ping = stats.SelectMany(group => group).SingleOrDefault(entry => entry.Key == "cmdstat_ping").Value;
        // calls=12,usec=...
        return ping is null ? 0 : long.Parse(ping.Split(',')[0]["calls=".Length..], CultureInfo.InvariantCulture);
    }
}
