using System.Net;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.ApiClient;

namespace Tracker.Tests.Api;

/// <summary>The 50-active-keys bound holds when a client creates keys concurrently.</summary>
[Collection(nameof(RealServers))]
public sealed class ConcurrentKeyCreationTests(ServersFixture servers) : ApiTest(servers)
{
    [Fact]
    public async Task Twenty_concurrent_creations_with_45_active_keys_create_exactly_5()
    {
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        // Registration made the first key.
        for (var index = 2; index <= 45; index++)
        {
            using var response = await Http.SendWithTokenAsync(HttpMethod.Post, "/api/v1/keys", token, new { name = $"key {index}" });
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        using var start = new ManualResetEventSlim();
        var creations = Enumerable.Range(0, 20).Select(index => Task.Run(async () =>
        {
            start.Wait();
            using var response = await Http.SendWithTokenAsync(HttpMethod.Post, "/api/v1/keys", token, new { name = $"concurrent {index}" });
            return response.StatusCode;
        })).ToArray();
        start.Set();
        var statuses = await Task.WhenAll(creations);

        Assert.Equal(5, statuses.Count(status => status == HttpStatusCode.Created));
        Assert.Equal(15, statuses.Count(status => status == HttpStatusCode.Conflict));
        await using var db = TestDatabase.CreateContext(Factory.DatabaseConnectionString);
        Assert.Equal(50, db.ApiKeys.Count(key => key.ClientId == client.Id && key.RevokedAt == null));
    }
}
