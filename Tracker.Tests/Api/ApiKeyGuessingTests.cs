using System.Net;
using System.Security.Cryptography;
using StackExchange.Redis;
using Tracker.ApiService.ApiKeys;
using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;
using static Tracker.Tests.Infrastructure.ApiClient;
using static Tracker.Tests.Infrastructure.ProblemAssertions;

namespace Tracker.Tests.Api;

/// <summary>
/// Someone guessing API keys costs the shared tier nothing (an unknown key is remembered only in the memory of
/// the instance that was asked), and an IP that keeps failing is turned away before any lookup.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class ApiKeyGuessingTests(ServersFixture servers, ITestOutputHelper output)
{
    private const string CurrentKey = "/api/v1/keys/current";

    [Fact]
    public async Task Guessed_keys_leave_nothing_in_redis_and_a_real_key_is_still_shared_there()
    {
        // The failure limit is lifted so that every guess reaches the cache.
        await using var factory = await TrackerApiFactory.CreateAsync(servers, FailureLimit(1_000_000));
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        await using var redis = await ConnectionMultiplexer.ConnectAsync(servers.Redis.ConnectionString + ",allowAdmin=true");
        var before = await CountAsync(redis, factory.CachePrefix + "api-key:*");

        var guesses = Enumerable.Range(0, 2000).Select(_ => ApiKeyFormat.Generate()).ToArray();
        await Parallel.ForEachAsync(guesses, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (guess, _) =>
        {
            using var response = await http.GetWithApiKeyAsync(CurrentKey, guess);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        });

        var afterGuessing = await CountAsync(redis, factory.CachePrefix + "api-key:*");
        var guessEntries = await redis.GetDatabase().KeyExistsAsync([.. guesses.Select(guess => CacheKey(factory.CachePrefix, guess))]);
        output.WriteLine($"api-key entries in Redis: {before} before, {afterGuessing} after 2,000 guesses; {guessEntries} of them for a guess");
        Assert.Equal(0, guessEntries);
        Assert.Equal(before, afterGuessing);

        using (var known = await http.GetWithApiKeyAsync(CurrentKey, client.ApiKey))
        {
            Assert.Equal(HttpStatusCode.OK, known.StatusCode);
        }

        Assert.True(await redis.GetDatabase().KeyExistsAsync(CacheKey(factory.CachePrefix, client.ApiKey)), "a found key is shared through Redis");
    }

    [Fact]
    public async Task An_ip_that_fails_too_often_gets_429_without_a_database_lookup_while_a_key_in_use_from_it_keeps_working()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, FailureLimit(5));
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        var neverUsed = await http.RegisterNewAsync();
        using var lookups = new MetricRecorder(factory, "tracker.cache.lookups", "tracker.rate_limit.decisions");

        // Successes around the failures: many of them, and none counts.
        var statuses = new List<HttpStatusCode>();
        for (var round = 0; round < 5; round++)
        {
            for (var success = 0; success < 4; success++)
            {
                statuses.Add(await StatusAsync(http, client.ApiKey));
            }

            statuses.Add(await StatusAsync(http, ApiKeyFormat.Generate()));
        }

        Assert.Equal([.. Enumerable.Repeat<HttpStatusCode[]>([.. Enumerable.Repeat(HttpStatusCode.OK, 4), HttpStatusCode.Unauthorized], 5).SelectMany(round => round)], statuses);

        // Five failures: from now on this IP costs the database nothing. A key it has been using is still found in
        // the caches (a tenant behind the same NAT keeps working); any key the caches do not know gets 429.
        lookups.Clear();
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(http, client.ApiKey));
        using (var uncached = await http.GetWithApiKeyAsync(CurrentKey, neverUsed.ApiKey))
        {
            await AssertProblemAsync(uncached, HttpStatusCode.TooManyRequests);
            var retryAfter = int.Parse(Assert.Single(uncached.Headers.GetValues("Retry-After")), System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(retryAfter, 1, 60);
        }

        using (var asBearer = await http.GetWithApiKeyAsync(CurrentKey, ApiKeyFormat.Generate(), asBearer: true))
        {
            await AssertProblemAsync(asBearer, HttpStatusCode.TooManyRequests);
        }

        Assert.Empty(lookups.Of("tracker.cache.lookups", ("cache", "api-key"), ("tier", "database")));
        // Each turned away by the block, and counted as such.
        Assert.Equal(2, lookups.Of("tracker.rate_limit.decisions", ("policy", "auth-failures"), ("outcome", "rejected"), ("store", "block")).Count());
    }

    [Fact]
    public async Task Failures_on_every_instance_count_toward_one_limit_per_ip()
    {
        await using var first = await TrackerApiFactory.CreateAsync(servers, FailureLimit(4));
        await using var second = first.CreateSibling();
        using var firstHttp = first.CreateClient();
        using var secondHttp = second.CreateClient();

        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(firstHttp, ApiKeyFormat.Generate()));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(firstHttp, ApiKeyFormat.Generate()));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(secondHttp, ApiKeyFormat.Generate()));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(secondHttp, ApiKeyFormat.Generate()));

        // The first instance saw only two failures itself; the fifth in all is over the shared limit.
        Assert.Equal(HttpStatusCode.TooManyRequests, await StatusAsync(firstHttp, ApiKeyFormat.Generate()));
        Assert.Equal(HttpStatusCode.TooManyRequests, await StatusAsync(firstHttp, ApiKeyFormat.Generate()));
    }

    private static Dictionary<string, string?> FailureLimit(int failures) => new()
    {
        ["RateLimiting:AuthFailures:PermitLimit"] = failures.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["RateLimiting:AuthFailures:WindowSeconds"] = "60",
    };

    private static async Task<HttpStatusCode> StatusAsync(HttpClient http, string apiKey)
    {
        using var response = await http.GetWithApiKeyAsync(CurrentKey, apiKey);
        return response.StatusCode;
    }

    private static RedisKey CacheKey(string prefix, string apiKey) =>
        prefix + "api-key:" + Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(apiKey)));

    private static async Task<int> CountAsync(ConnectionMultiplexer redis, string pattern) =>
        await redis.GetServers().Single().KeysAsync(pattern: pattern, pageSize: 1000).CountAsync();
}
