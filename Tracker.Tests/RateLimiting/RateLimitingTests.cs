using System.Net;
using System.Text.Json;
using StackExchange.Redis;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.ApiClient;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.RateLimiting.RateLimitAssertions;

namespace Tracker.Tests.RateLimiting;

/// <summary>
/// The limits as clients meet them: exact under concurrent bursts, shared by every instance, announced in the
/// standard headers, refused with a 429 ProblemDetails and Retry-After.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class RateLimitingTests(ServersFixture servers)
{
    private static Dictionary<string, string?> Limits(int usage = 100_000, int auth = 100_000, int ingestBurst = 1_000_000, double ingestPerSecond = 1_000_000) => new()
    {
        ["RateLimiting:Usage:PermitLimit"] = usage.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["RateLimiting:Usage:WindowSeconds"] = "60",
        ["RateLimiting:Auth:PermitLimit"] = auth.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["RateLimiting:Auth:WindowSeconds"] = "60",
        ["RateLimiting:Ingest:BurstLimit"] = ingestBurst.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["RateLimiting:Ingest:TokensPerSecond"] = ingestPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture),
        // A batch may hold no more logs than the bucket's burst: it could never be paid for.
        ["Ingest:MaxLogsPerBatchRequest"] = Math.Min(1000, ingestBurst).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    [Fact]
    public async Task A_burst_of_64_concurrent_requests_against_a_limit_of_5_lets_exactly_5_through()
    {
        // One request first (of a limit of 6), so the caller's identity and usage generation are cached and only
        // the limiter's own round trips are counted below.
        await using var factory = await TrackerApiFactory.CreateAsync(servers, Limits(usage: 6));
        using var http = factory.CreateClient();
        var token = await http.LoginTokenAsync(await http.RegisterNewAsync());
        using (var first = await http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/daily", token))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        await using var redis = await ConnectionMultiplexer.ConnectAsync(servers.Redis.ConnectionString + ",allowAdmin=true");
        var scriptCallsBefore = await ScriptCallsAsync(redis);

        // Redis holds back scripts for a while, so the first request's round trip is in flight while the other 63
        // arrive: the design decides them all together in the next round trip, whatever the machine's speed.
        await redis.GetServers().Single().ExecuteAsync("CLIENT", "PAUSE", "2000", "WRITE");
        var statuses = await Task.WhenAll(Enumerable.Range(0, 64).Select(async _ =>
        {
            using var response = await http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/daily", token);
            return response.StatusCode;
        }));

        Assert.Equal(5, statuses.Count(status => status == HttpStatusCode.OK));
        Assert.Equal(59, statuses.Count(status => status == HttpStatusCode.TooManyRequests));
        // One round trip for the first request and one for the rest; a few more only if a request came after the
        // pause ended, or a usage generation expired on the way (one script each). Deciding each request by a round
        // trip of its own would take 64.
        Assert.InRange(await ScriptCallsAsync(redis) - scriptCallsBefore, 2, 8);
    }

    [Fact]
    public async Task A_burst_of_64_concurrent_logs_against_a_bucket_of_5_lets_exactly_5_through()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, Limits(ingestBurst: 5, ingestPerSecond: 0.001));
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();

        var statuses = await Task.WhenAll(Enumerable.Range(0, 64).Select(async _ =>
        {
            using var response = await http.PostLogAsync(client.ApiKey, Log());
            return response.StatusCode;
        }));

        Assert.Equal(5, statuses.Count(status => status == HttpStatusCode.Created));
        Assert.Equal(59, statuses.Count(status => status == HttpStatusCode.TooManyRequests));
        Assert.Equal(5, await CountLogsAsync(factory.DatabaseConnectionString));
    }

    [Fact]
    public async Task Two_instances_share_one_limit()
    {
        await using var first = await TrackerApiFactory.CreateAsync(servers, Limits(usage: 5));
        await using var second = first.CreateSibling();
        using var firstHttp = first.CreateClient();
        using var secondHttp = second.CreateClient();
        var token = await firstHttp.LoginTokenAsync(await firstHttp.RegisterNewAsync());

        var statuses = new List<HttpStatusCode>();
        for (var request = 0; request < 10; request++)
        {
            using var response = await (request % 2 == 0 ? firstHttp : secondHttp).SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", token);
            statuses.Add(response.StatusCode);
        }

        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.OK, 5), .. Enumerable.Repeat(HttpStatusCode.TooManyRequests, 5)], statuses);
    }

    [Fact]
    public async Task Limited_responses_carry_the_policy_and_what_remains_and_a_refusal_says_when_to_retry()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, Limits(usage: 3, ingestBurst: 2000, ingestPerSecond: 1000));
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        var token = await http.LoginTokenAsync(client);

        for (var remaining = 2; remaining >= 0; remaining--)
        {
            using var allowed = await http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/daily", token);
            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
            Assert.Equal("\"usage\";q=3;w=60", Header(allowed, "RateLimit-Policy"));
            var state = Header(allowed, "RateLimit");
            Assert.StartsWith($"\"usage\";r={remaining};t=", state, StringComparison.Ordinal);
            Assert.InRange(int.Parse(state.Split("t=")[1], System.Globalization.CultureInfo.InvariantCulture), 1, 60);
        }

        using var refused = await http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/top", token);
        var body = await refused.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.Equal(429, JsonDocument.Parse(body).RootElement.GetProperty("status").GetInt32());
        Assert.InRange(int.Parse(Header(refused, "Retry-After"), System.Globalization.CultureInfo.InvariantCulture), 1, 60);
        Assert.StartsWith("\"usage\";r=0;t=", Header(refused, "RateLimit"), StringComparison.Ordinal);

        // Ingest has a policy of its own (per key, token bucket), unaffected by the exhausted usage limit.
        using var log = await http.PostLogAsync(client.ApiKey, Log());
        Assert.Equal(HttpStatusCode.Created, log.StatusCode);
        Assert.Equal("\"ingest\";q=2000;w=2", Header(log, "RateLimit-Policy"));
        Assert.StartsWith("\"ingest\";r=1999;t=", Header(log, "RateLimit"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Login_brute_force_is_throttled_per_ip_and_a_forwarded_header_does_not_dodge_it()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, Limits(auth: 10));
        using var http = factory.CreateClient();
        var statuses = new List<HttpStatusCode>();
        for (var attempt = 0; attempt < 12; attempt++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/auth/login")
            {
                Content = System.Net.Http.Json.JsonContent.Create(new { email = "victim@example.com", password = $"guess-{attempt}" }),
            };
            // No proxy is trusted, so this header must not give each attempt a bucket of its own.
            request.Headers.Add("X-Forwarded-For", $"198.51.100.{attempt + 1}");
            using var response = await http.SendAsync(request);
            statuses.Add(response.StatusCode);
        }

        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.Unauthorized, 10), HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], statuses);
    }

    [Fact]
    public async Task Behind_a_trusted_proxy_each_forwarded_client_ip_has_its_own_bucket()
    {
        var settings = Limits(auth: 2);
        settings["ForwardedHeaders:TrustedProxies:0"] = "127.0.0.1";
        await using var factory = await TrackerApiFactory.CreateAsync(servers, settings);
        using var http = factory.CreateClient();

        async Task<HttpStatusCode> LoginFromAsync(string ip)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/auth/login")
            {
                Content = System.Net.Http.Json.JsonContent.Create(new { email = "victim@example.com", password = "wrong-password" }),
            };
            request.Headers.Add("X-Forwarded-For", ip);
            using var response = await http.SendAsync(request);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.Unauthorized, await LoginFromAsync("198.51.100.1"));
        Assert.Equal(HttpStatusCode.Unauthorized, await LoginFromAsync("198.51.100.1"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await LoginFromAsync("198.51.100.1"));
        Assert.Equal(HttpStatusCode.Unauthorized, await LoginFromAsync("198.51.100.2"));
    }

    [Fact]
    public async Task With_usage_leases_off_each_fixed_window_decision_is_one_redis_round_trip()
    {
        var settings = Limits();
        settings["RateLimiting:Usage:LeaseMilliseconds"] = "0";
        await using var factory = await TrackerApiFactory.CreateAsync(servers, settings);
        using var http = factory.CreateClient();
        var token = await http.LoginTokenAsync(await http.RegisterNewAsync());
        await using var redis = await ConnectionMultiplexer.ConnectAsync(servers.Redis.ConnectionString + ",allowAdmin=true");

        var before = await ScriptCallsAsync(redis);
        for (var request = 0; request < 20; request++)
        {
            using var response = await http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", token);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(20, await ScriptCallsAsync(redis) - before);
    }

    [Fact]
    public async Task A_busy_key_spends_tokens_taken_ahead_without_a_round_trip_each_and_never_more_than_redis_gave()
    {
        // Leases that last 2 s: what one holds depends on the key's rate, not on how fast this machine happens to be.
        var settings = Limits(ingestBurst: 1000, ingestPerSecond: 0.001);
        settings["RateLimiting:Ingest:LeaseMilliseconds"] = "2000";
        await using var factory = await TrackerApiFactory.CreateAsync(servers, settings);
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        await using var redis = await ConnectionMultiplexer.ConnectAsync(servers.Redis.ConnectionString + ",allowAdmin=true");

        var before = await ScriptCallsAsync(redis);
        for (var request = 0; request < 200; request++)
        {
            using var response = await http.PostLogAsync(client.ApiKey, Log());
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        // A fetch asks for what the key's rate spends in a lifetime (at most 125, an eighth of the burst) and the next
        // starts when a quarter is left: one round trip per few tens of requests, where one per request would be 200.
        var roundTrips = await ScriptCallsAsync(redis) - before;
        Assert.InRange(roundTrips, 1, 20);
        // Every request spent a token taken from the shared bucket first.
        var bucket = Assert.Single(await IngestBucketsAsync(redis, factory));
        Assert.InRange((double)await redis.GetDatabase().HashGetAsync(bucket, "tokens"), 0, 800);
    }

    [Fact]
    public async Task A_burst_against_a_leased_bucket_gets_what_the_bucket_holds_and_never_more()
    {
        const int burst = 400;
        await using var factory = await TrackerApiFactory.CreateAsync(servers, Limits(ingestBurst: burst, ingestPerSecond: 0.001));
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();

        var statuses = await ConcurrentlyAsync(700, atOnce: 64, async _ =>
        {
            using var response = await http.PostLogAsync(client.ApiKey, Log());
            return response.StatusCode;
        });

        var created = statuses.Count(status => status == HttpStatusCode.Created);
        // Held tokens are spent by the next requests, or handed back when their lease ends and fetched again: with
        // 300 requests beyond the bucket still to come when it empties, none is left unspent.
        Assert.Equal(burst, created);
        Assert.Equal(700 - created, statuses.Count(status => status == HttpStatusCode.TooManyRequests));
        Assert.Equal(created, await CountLogsAsync(factory.DatabaseConnectionString));
    }

    [Fact]
    public async Task Two_instances_share_one_ingest_bucket_each_holding_at_most_an_eighth_of_it()
    {
        const int burst = 80;
        await using var first = await TrackerApiFactory.CreateAsync(servers, Limits(ingestBurst: burst, ingestPerSecond: 0.001));
        await using var second = first.CreateSibling();
        using var firstHttp = first.CreateClient();
        using var secondHttp = second.CreateClient();
        var client = await firstHttp.RegisterNewAsync();

        var created = 0;
        for (var request = 0; request < 2 * burst; request++)
        {
            using var response = await (request % 2 == 0 ? firstHttp : secondHttp).PostLogAsync(client.ApiKey, Log());
            created += response.StatusCode == HttpStatusCode.Created ? 1 : 0;
        }

        Assert.InRange(created, burst - 2 * (burst / 8), burst);
        Assert.Equal(created, await CountLogsAsync(first.DatabaseConnectionString));
    }

    [Fact]
    public async Task A_client_alone_spends_its_whole_usage_window_from_permits_held_ahead_and_each_answer_says_what_is_left()
    {
        const int limit = 100;
        var settings = Limits(usage: limit);
        settings["RateLimiting:Usage:LeaseMilliseconds"] = "10000";
        await using var factory = await TrackerApiFactory.CreateAsync(servers, settings);
        using var http = factory.CreateClient();
        var token = await http.LoginTokenAsync(await http.RegisterNewAsync());
        await using var redis = await ConnectionMultiplexer.ConnectAsync(servers.Redis.ConnectionString + ",allowAdmin=true");

        var before = await ScriptCallsAsync(redis);
        for (var remaining = limit - 1; remaining >= 0; remaining--)
        {
            using var allowed = await http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", token);
            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
            // What is left as this instance sees it: never more than is left, and less only by the permits a fetch
            // still on its way is bringing (it was counted in Redis before the request's own round trip).
            var state = Header(allowed, "RateLimit");
            Assert.StartsWith("\"usage\";r=", state, StringComparison.Ordinal);
            Assert.InRange(int.Parse(state["\"usage\";r=".Length..state.IndexOf(';', 8)], System.Globalization.CultureInfo.InvariantCulture),
                Math.Max(0, remaining - limit / 8), remaining);
            Assert.InRange(int.Parse(state.Split("t=")[1], System.Globalization.CultureInfo.InvariantCulture), 1, 60);
        }

        using var refused = await http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", token);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.StartsWith("\"usage\";r=0;t=", Header(refused, "RateLimit"), StringComparison.Ordinal);
        Assert.InRange(int.Parse(Header(refused, "Retry-After"), System.Globalization.CultureInfo.InvariantCulture), 1, 60);
        // Permits were taken ahead, a few per round trip (at most an eighth of the limit), not one per request.
        Assert.InRange(await ScriptCallsAsync(redis) - before, limit / 12, limit / 3);
    }

    [Fact]
    public async Task Two_instances_holding_usage_permits_ahead_never_admit_more_than_the_window_limit()
    {
        const int limit = 400;
        var settings = Limits(usage: limit);
        settings["RateLimiting:Usage:LeaseMilliseconds"] = "10000";
        await using var first = await TrackerApiFactory.CreateAsync(servers, settings);
        await using var second = first.CreateSibling();
        using var firstHttp = first.CreateClient();
        using var secondHttp = second.CreateClient();
        var token = await firstHttp.LoginTokenAsync(await firstHttp.RegisterNewAsync());

        var statuses = await ConcurrentlyAsync(1000, atOnce: 32, async request =>
        {
            using var response = await (request % 2 == 0 ? firstHttp : secondHttp).SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", token);
            return response.StatusCode;
        });

        // Never more than the limit; less only by what an instance still held when its last request had passed (each
        // holds at most an eighth of the limit).
        var allowed = statuses.Count(status => status == HttpStatusCode.OK);
        Assert.InRange(allowed, limit - 2 * (limit / 8), limit);
        Assert.Equal(1000 - allowed, statuses.Count(status => status == HttpStatusCode.TooManyRequests));
    }

    [Fact]
    public async Task A_slow_key_finds_tokens_held_for_it_between_its_requests()
    {
        var settings = Limits(ingestBurst: 1000, ingestPerSecond: 0.001);
        settings["RateLimiting:Ingest:SlowKeyLeaseMilliseconds"] = "10000";
        await using var factory = await TrackerApiFactory.CreateAsync(servers, settings);
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        await using var redis = await ConnectionMultiplexer.ConnectAsync(servers.Redis.ConnectionString + ",allowAdmin=true");

        // One log every 60 ms or more: too slow for the 100 ms lease to hold a token from one request to the next.
        var before = await ScriptCallsAsync(redis);
        for (var request = 0; request < 40; request++)
        {
            using var response = await http.PostLogAsync(client.ApiKey, Log());
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            await Task.Delay(TimeSpan.FromMilliseconds(60));
        }

        Assert.InRange(await ScriptCallsAsync(redis) - before, 1, 12);
    }

    [Fact]
    public async Task Many_keys_on_two_instances_each_get_at_most_their_own_bucket()
    {
        const int burst = 40;
        const int keys = 30;
        var settings = Limits(ingestBurst: burst, ingestPerSecond: 0.001);
        // Every key slow: tokens are held for the slow-key lease, past the whole test.
        settings["RateLimiting:Ingest:LeaseMilliseconds"] = "1";
        settings["RateLimiting:Ingest:SlowKeyLeaseMilliseconds"] = "30000";
        await using var first = await TrackerApiFactory.CreateAsync(servers, settings);
        await using var second = first.CreateSibling();
        using var firstHttp = first.CreateClient();
        using var secondHttp = second.CreateClient();
        var client = await firstHttp.RegisterNewAsync();
        var token = await firstHttp.LoginTokenAsync(client);
        var apiKeys = new List<string> { client.ApiKey };
        while (apiKeys.Count < keys)
        {
            using var key = await firstHttp.SendWithTokenAsync(HttpMethod.Post, "/api/v1/keys", token, new { name = $"key {apiKeys.Count}" });
            apiKeys.Add((await DataAsync(key, HttpStatusCode.Created)).GetProperty("apiKey").GetString()!);
        }

        // Every key's requests alternate between the instances, all keys at once.
        var statuses = await ConcurrentlyAsync(2 * burst * keys, atOnce: 32, async request =>
        {
            var apiKey = apiKeys[request % keys];
            using var response = await (request / keys % 2 == 0 ? firstHttp : secondHttp).PostLogAsync(apiKey, Log());
            return (apiKey, response.StatusCode);
        });
        var created = apiKeys.Select(apiKey => statuses.Count(status => status == (apiKey, HttpStatusCode.Created))).ToArray();

        Assert.All(created, count => Assert.InRange(count, burst - 2 * (burst / 8), burst));
        Assert.Equal(created.Sum(), await CountLogsAsync(first.DatabaseConnectionString));
    }

    [Fact]
    public async Task With_redis_stopped_limits_hold_per_instance_and_redis_decides_again_when_it_returns()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, Limits(usage: 5));
        using var http = factory.CreateClient();
        var token = await http.LoginTokenAsync(await http.RegisterNewAsync());
        using var metrics = new MetricRecorder(factory, "tracker.rate_limit.decisions", "tracker.rate_limit.fallback.activations");

        async Task<List<HttpStatusCode>> ListKeysAsync(int times)
        {
            var statuses = new List<HttpStatusCode>();
            for (var request = 0; request < times; request++)
            {
                using var response = await http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", token);
                statuses.Add(response.StatusCode);
            }

            return statuses;
        }

        await servers.Redis.StopAsync();
        try
        {
            Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.OK, 5), HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], await ListKeysAsync(7));
            Assert.Equal(7, metrics.Of("tracker.rate_limit.decisions", ("policy", "usage"), ("store", "memory")).Count());
            Assert.Single(metrics.Of("tracker.rate_limit.fallback.activations", ("policy", "usage")));
            Assert.Single(factory.Logs.Lines, line => line.Contains("Redis is unavailable", StringComparison.Ordinal));
        }
        finally
        {
            await servers.Redis.StartAsync();
        }

        await Poll.UntilLoggedAsync(factory.Logs, "Redis is available again", TimeSpan.FromSeconds(30));
        metrics.Clear();

        // The restarted Redis is empty, so its window starts afresh: five more, decided in Redis.
        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.OK, 5), HttpStatusCode.TooManyRequests], await ListKeysAsync(6));
        Assert.Equal(6, metrics.Of("tracker.rate_limit.decisions", ("policy", "usage"), ("store", "redis")).Count());
    }

    [Fact]
    public async Task The_openapi_document_lists_the_refusal_of_every_limited_route()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers);
        using var http = factory.CreateClient();
        var paths = JsonDocument.Parse(await http.GetStringAsync(new Uri("/openapi/v1.json", UriKind.Relative))).RootElement.GetProperty("paths");

        foreach (var (path, method) in new[] { ("/api/v1/auth/login", "post"), ("/api/v1/usages/daily", "get"), ("/api/v1/keys", "get"), ("/api/v1/logs", "post") })
        {
            Assert.True(paths.GetProperty(path).GetProperty(method).GetProperty("responses").TryGetProperty("429", out _), $"{method} {path} documents no 429");
        }
    }

    private static async Task<T[]> ConcurrentlyAsync<T>(int requests, int atOnce, Func<int, Task<T>> send)
    {
        using var concurrency = new SemaphoreSlim(atOnce);
        return await Task.WhenAll(Enumerable.Range(0, requests).Select(async request =>
        {
            await concurrency.WaitAsync();
            try
            {
                return await send(request);
            }
            finally
            {
                concurrency.Release();
            }
        }));
    }

    private static async Task<long> ScriptCallsAsync(ConnectionMultiplexer redis)
    {
        var info = await redis.GetServers().Single().InfoAsync("commandstats");
        return info.SelectMany(group => group)
            .Where(entry => entry.Key is "cmdstat_evalsha" or "cmdstat_eval")
            .Sum(entry => long.Parse(entry.Value.Split(',')[0].Split('=')[1], System.Globalization.CultureInfo.InvariantCulture));
    }
}
