using System.IO.Compression;
using System.Net;
using System.Text.Json;
using StackExchange.Redis;
using Tracker.ApiService.Usage;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.ApiClient;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.UsageClient;

namespace Tracker.Tests.Usage;

/// <summary>
/// Every usage answer is cached as its response body, serialised once (gzipped if large): the shared tier holds the
/// very bytes the API sends, and every instance, whichever tier answers it, sends the same bytes.
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

    [Fact]
    public async Task A_large_answer_is_kept_gzipped_sent_so_where_gzip_is_accepted_and_decompressed_where_it_is_not()
    {
        await AvoidHourBoundaryAsync();
        await using var sibling = Factory.CreateSibling();
        using var siblingHttp = sibling.CreateClient();
        await using var uncached = Factory.CreateSibling(new Dictionary<string, string?> { ["Usage:CacheAnswers"] = "false" });
        using var uncachedHttp = uncached.CreateClient();
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        await ExecuteAsync(Factory.DatabaseConnectionString, HundredLongEndpoints(client.Id));
        const string path = "/api/v1/usages/endpoints?hours=1&limit=100";

        var (json, jsonEncoding, jsonVaries) = await GetAsync(Http, path, token, acceptEncoding: null);
        Assert.Null(jsonEncoding);
        Assert.True(jsonVaries);
        Assert.InRange(json.Length, SerializedAnswer.GzipFromBytes, int.MaxValue);
        Assert.Equal(100, JsonDocument.Parse(json).RootElement.GetProperty("data").GetArrayLength());

        var (gzipped, gzippedEncoding, gzippedVaries) = await GetAsync(Http, path, token, "gzip, deflate, br");
        Assert.Equal("gzip", gzippedEncoding);
        Assert.True(gzippedVaries);
        Assert.Equal(json, Gunzip(gzipped));
        Assert.InRange(gzipped.Length, 1, json.Length / 4);

        // Another instance reads the same gzipped bytes from Redis (the rows are gone: it could not compute them
        // again); refusing gzip gets the JSON.
        await ExecuteAsync(Factory.DatabaseConnectionString, $"DELETE FROM usage_hourly_details WHERE client_id = '{client.Id}'");
        Assert.Equal(gzipped, (await GetAsync(siblingHttp, path, token, "gzip")).Body);
        Assert.Equal(json, (await GetAsync(siblingHttp, path, token, "gzip;q=0, br")).Body);

        await using var redis = await ConnectionMultiplexer.ConnectAsync(Servers.Redis.ConnectionString);
        var stored = await redis.GetDatabase().HashGetAsync(
            redis.GetServers().Single().Keys(pattern: $"{Factory.CachePrefix}usage-endpoints:*{client.Id:N}*").Single(), "data");
        Assert.True(((byte[])stored!).AsSpan().IndexOf(gzipped) >= 0);

        // An answer loaded for one request only is sent as it is.
        await ExecuteAsync(Factory.DatabaseConnectionString, HundredLongEndpoints(client.Id));
        var (fresh, freshEncoding, _) = await GetAsync(uncachedHttp, path, token, "gzip");
        Assert.Null(freshEncoding);
        Assert.Equal(100, JsonDocument.Parse(fresh).RootElement.GetProperty("data").GetArrayLength());
    }

    // A hundred endpoints of 120 characters in the current hour: an answer of about 20 kB, over the size kept gzipped.
    private static string HundredLongEndpoints(Guid clientId) => $$"""
        INSERT INTO usage_hourly_details (client_id, hour_start, endpoint, method, status_class, api_key_id, request_count, latency)
        SELECT '{{clientId}}', date_trunc('hour', now(), 'UTC'), '/v1/' || rpad(chr(97 + name / 26) || chr(97 + name % 26), 116, 'x'),
               'GET', 2, '{{Guid.NewGuid()}}', name + 1, ARRAY[]::bigint[]
        FROM generate_series(0, 99) AS name
        """;

    // The body as sent (the test's client decompresses nothing), its content coding, and whether it varies by Accept-Encoding.
    private static async Task<(byte[] Body, string? Encoding, bool VariesByEncoding)> GetAsync(
        HttpClient http, string path, string token, string? acceptEncoding)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new("Bearer", token);
        if (acceptEncoding is not null)
        {
            request.Headers.TryAddWithoutValidation("Accept-Encoding", acceptEncoding);
        }

        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(body.Length, response.Content.Headers.ContentLength);
        return (body, response.Content.Headers.ContentEncoding.SingleOrDefault(), response.Headers.Vary.Contains("Accept-Encoding"));
    }

    private static byte[] Gunzip(byte[] gzipped)
    {
        using var json = new MemoryStream();
        using (var gzip = new GZipStream(new MemoryStream(gzipped), CompressionMode.Decompress))
        {
            gzip.CopyTo(json);
        }

        return json.ToArray();
    }

    private static async Task<byte[]> BodyAsync(HttpClient http, string path, string token) =>
        (await GetAsync(http, path, token, acceptEncoding: null)).Body;
}
