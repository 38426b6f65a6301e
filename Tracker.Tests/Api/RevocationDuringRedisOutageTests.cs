using System.Diagnostics;
using System.Net;
using StackExchange.Redis;
using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;
using static Tracker.Tests.Infrastructure.ApiClient;

namespace Tracker.Tests.Api;

/// <summary>
/// A key revoked while Redis is unreachable stays revoked once Redis answers again, although Redis comes back
/// with the entry that says the key is active.
/// </summary>
/// <remarks>
/// The test runs a Redis of its own, snapshotted with <c>SAVE</c> and then killed: restarted in the same
/// directory it loads the snapshot, as a Redis that restarts with persistence or a network partition that heals
/// would come back. (Pausing the process with SIGSTOP was the other way; a paused server keeps its connections
/// open, so the clients see timeouts rather than an outage, which is not the case under test.)
/// </remarks>
[Collection(nameof(RealServers))]
public sealed class RevocationDuringRedisOutageTests(ServersFixture servers, ITestOutputHelper output) : IAsyncLifetime
{
    private const string CurrentKey = "/api/v1/keys/current";

    private RedisTestServer _redis = null!;

    public async Task InitializeAsync() => _redis = await RedisTestServer.StartNewAsync();

    public async Task DisposeAsync() => await _redis.DisposeAsync();

    [Fact]
    public async Task A_key_revoked_while_redis_is_down_is_refused_on_every_instance_within_a_second_of_redis_returning()
    {
        await using var first = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?> { ["ConnectionStrings:cache"] = _redis.ConnectionString });
        await using var second = first.CreateSibling();
        using var firstHttp = first.CreateClient();
        using var secondHttp = second.CreateClient();
        var client = await firstHttp.RegisterNewAsync();
        var token = await firstHttp.LoginTokenAsync(client);
        using var created = await firstHttp.SendWithTokenAsync(HttpMethod.Post, "/api/v1/keys", token, new { name = "revoked in the dark" });
        var key = await DataAsync(created, HttpStatusCode.Created);
        var secret = key.GetProperty("apiKey").GetString()!;

        Assert.Equal(HttpStatusCode.OK, await StatusAsync(firstHttp, secret));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(secondHttp, secret));
        await using (var admin = await ConnectionMultiplexer.ConnectAsync(_redis.ConnectionString + ",allowAdmin=true"))
        {
            var entry = first.CachePrefix + "api-key:" + Convert.ToHexStringLower(
                System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(secret)));
            Assert.True(await admin.GetDatabase().KeyExistsAsync(entry), "the active key is cached in Redis");
            // SAVE, not BGSAVE: the snapshot is complete when it answers.
            await admin.GetDatabase().ExecuteAsync("SAVE");
        }

        await _redis.StopAsync();
        await Poll.UntilLoggedAsync(first.Logs, "Redis is unavailable", TimeSpan.FromSeconds(30));
        await Poll.UntilLoggedAsync(second.Logs, "Redis is unavailable", TimeSpan.FromSeconds(30));

        using (var revoke = await firstHttp.SendWithTokenAsync(HttpMethod.Delete, $"/api/v1/keys/{key.GetProperty("id").GetGuid()}", token))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }

        // Without Redis both instances ask PostgreSQL once their memory entry (500 ms) is gone.
        await Poll.UntilAsync(async () => await StatusAsync(secondHttp, secret) == HttpStatusCode.Unauthorized, TimeSpan.FromSeconds(3));
        await Task.Delay(TimeSpan.FromSeconds(2.5));

        // Back with its snapshot, which still holds the key as active.
        await _redis.StartAsync();
        await Poll.UntilLoggedAsync(first.Logs, "Redis is available again", TimeSpan.FromSeconds(30));
        await Poll.UntilLoggedAsync(second.Logs, "Redis is available again", TimeSpan.FromSeconds(30));
        var sinceBack = Stopwatch.StartNew();

        var refused = await Poll.UntilAsync(async () =>
            await StatusAsync(firstHttp, secret) == HttpStatusCode.Unauthorized && await StatusAsync(secondHttp, secret) == HttpStatusCode.Unauthorized,
            TimeSpan.FromSeconds(5));
        output.WriteLine($"Refused by both instances {sinceBack.ElapsedMilliseconds} ms after both reconnected (poll took {refused.TotalMilliseconds:F0} ms)");

        // And it stays refused: nothing writes the old answer back.
        for (var check = 0; check < 10; check++)
        {
            await Task.Delay(200);
            Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(firstHttp, secret));
            Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(secondHttp, secret));
        }
    }

    private static async Task<HttpStatusCode> StatusAsync(HttpClient http, string apiKey)
    {
        using var response = await http.GetWithApiKeyAsync(CurrentKey, apiKey);
        return response.StatusCode;
    }
}
