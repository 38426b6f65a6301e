using System.Net;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.RateLimiting;

/// <summary>
/// Which bucket a caller's requests fall in when the client IP comes from a proxy's <c>X-Forwarded-For</c>:
/// the hop the trusted proxy appended, never an entry the client wrote; and an IPv6 caller's whole /64.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class ForwardedClientAddressTests(ServersFixture servers)
{
    [Fact]
    public async Task Trusting_the_platform_ingress_partitions_by_the_last_forwarded_hop_only()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["ForwardedHeaders:TrustAllProxies"] = "true",
            ["RateLimiting:Auth:PermitLimit"] = "2",
        });
        using var http = factory.CreateClient();

        Assert.Equal(HttpStatusCode.Unauthorized, await LoginFromAsync(http, "1.2.3.4, 5.6.7.8"));
        Assert.Equal(HttpStatusCode.Unauthorized, await LoginFromAsync(http, "1.2.3.5, 5.6.7.8"));
        // 5.6.7.8 has spent its bucket; whatever the client puts before it does not give it another.
        Assert.Equal(HttpStatusCode.TooManyRequests, await LoginFromAsync(http, "9.9.9.9, 5.6.7.8"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await LoginFromAsync(http, "5.6.7.9, 5.6.7.8"));
        // Another caller behind the same ingress has a bucket of its own.
        Assert.Equal(HttpStatusCode.Unauthorized, await LoginFromAsync(http, "5.6.7.8, 5.6.7.9"));
    }

    [Fact]
    public async Task IPv6_callers_share_one_bucket_per_64_bit_prefix_and_mapped_IPv4_counts_as_IPv4()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["ForwardedHeaders:TrustedProxies:0"] = "127.0.0.1",
            ["RateLimiting:Auth:PermitLimit"] = "2",
        });
        using var http = factory.CreateClient();

        Assert.Equal(HttpStatusCode.Unauthorized, await LoginFromAsync(http, "2001:db8:1:2::1"));
        Assert.Equal(HttpStatusCode.Unauthorized, await LoginFromAsync(http, "2001:db8:1:2:ffff:ffff:ffff:ffff"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await LoginFromAsync(http, "2001:db8:1:2:abcd::42"));
        Assert.Equal(HttpStatusCode.Unauthorized, await LoginFromAsync(http, "2001:db8:1:3::1"));

        Assert.Equal(HttpStatusCode.Unauthorized, await LoginFromAsync(http, "198.51.100.7"));
        Assert.Equal(HttpStatusCode.Unauthorized, await LoginFromAsync(http, "::ffff:198.51.100.7"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await LoginFromAsync(http, "198.51.100.7"));
    }

    private static async Task<HttpStatusCode> LoginFromAsync(HttpClient http, string forwardedFor)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/auth/login")
        {
            Content = System.Net.Http.Json.JsonContent.Create(new { email = "victim@example.com", password = "wrong-password" }),
        };
        request.Headers.Add("X-Forwarded-For", forwardedFor);
        using var response = await http.SendAsync(request);
        return response.StatusCode;
    }
}
