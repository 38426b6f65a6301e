using System.Net;
using StackExchange.Redis;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.ApiClient;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.UsageClient;

namespace Tracker.Tests.Usage;

/// <summary>
/// Every usage answer is cached as its response body, serialised once: the shared tier holds the very bytes the API
/// sends, and every instance, whichever tier answers it, sends the same bytes as JSON.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class SerializedAnswerTests(ServersFixture servers) : ApiTest(servers)
{
    // The routes and the name of their cache (the key's prefix in Redis).
    private static readonly (string Cache, string Path)[] Routes =
    [
        ("usage-daily", "/api/v1/usages/daily?days=3"),
        ("usage-top", "/api/v1/usages/top?limit=2"),
        ("usage-endpoints", "/api/v1/usages/endpoints?hours=2"),
        ("usage-series", "/api/v1/usages/series?days=2&groupBy=endpoint&percentiles=true"),
        ("usage-key-daily", "/api/v1/keys/{key}/usage?days=2"),
    ];

    [Fact]
    public async Task Every_usage_answer_is_cached_as_its_response_body_and_every_instance_sends_those_bytes()
    {
        await AvoidHourBoundaryAsync();
        await using var sibling = Factory.CreateSibling();
        using var siblingHttp = sibling.CreateClient();
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        using (var response = await Http.PostBatchAsync(client.ApiKey, Enumerable.Range(0, 20).Select(index => new
        {
            ipAddress = "203.0.113.7", endpoint = $"/v1/orders/{index % 3}", method = "GET", statusCode = index % 4 == 0 ? 404 : 200,
            durationMs = 10.0 + index, timestamp = DateTimeOffset.UtcNow.AddSeconds(-1).ToUnixTimeMilliseconds(),
        })))
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        await Poll.UntilAsync(async () => (await Http.DailyAsync(token, 1))[0].Count == 20, TimeSpan.FromSeconds(10));
        using var keys = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", token);
        var keyId = (await DataAsync(keys, HttpStatusCode.OK))[0].GetProperty("id").GetGuid();

        await using var redis = await ConnectionMultiplexer.ConnectAsync(Servers.Redis.ConnectionString);
        foreach (var (cache, template) in Routes)
        {
            var path = template.Replace("{key}", keyId.ToString(), StringComparison.Ordinal);
            var loaded = await BodyAsync(Http, path, token);
            Assert.Contains("\"message\":", System.Text.Encoding.UTF8.GetString(loaded), StringComparison.Ordinal);
            Assert.Equal(loaded, await BodyAsync(Http, path, token));
            Assert.Equal(loaded, await BodyAsync(siblingHttp, path, token));

            // HybridCache frames the payload (a header before it, a sentinel after); the payload is the body.
            var stored = new List<byte[]>();
            foreach (var entry in redis.GetServers().Single().Keys(pattern: $"{Factory.CachePrefix}{cache}:*"))
            {
                stored.Add((byte[])(await redis.GetDatabase().HashGetAsync(entry, "data"))!);
            }

            Assert.Contains(stored, entry => entry.AsSpan().IndexOf(loaded) >= 0);
        }
    }

    private static async Task<byte[]> BodyAsync(HttpClient http, string path, string token)
    {
        using var response = await http.SendWithTokenAsync(HttpMethod.Get, path, token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(body.Length, response.Content.Headers.ContentLength);
        return body;
    }
}
