using System.Net;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.ApiClient;
using static Tracker.Tests.RateLimiting.RateLimitAssertions;

namespace Tracker.Tests.RateLimiting;

/// <summary>
/// Which policy covers which route, as the README's table says, read from the <c>RateLimit-Policy</c> and
/// <c>RateLimit</c> headers: registration and login share the <c>auth</c> policy per client IP, and
/// <c>GET /api/v1/keys/current</c> is under <c>ingest</c>, per API key.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class RoutePolicyTests(ServersFixture servers) : ApiTest(servers, new Dictionary<string, string?>
{
    // Numbers no other policy has, so each header can only come from the policy it names.
    ["RateLimiting:Auth:PermitLimit"] = "7",
    ["RateLimiting:Auth:WindowSeconds"] = "60",
    ["RateLimiting:Usage:PermitLimit"] = "9",
    ["RateLimiting:Ingest:BurstLimit"] = "11",
    ["RateLimiting:Ingest:TokensPerSecond"] = "0.05",
    ["Ingest:MaxLogsPerBatchRequest"] = "11",
})
{
    [Fact]
    public async Task Register_and_login_are_under_the_auth_policy_sharing_one_count_per_ip()
    {
        using var register = await Http.RegisterAsync(new { name = "Test Client", email = UniqueEmail(), password = StrongPassword });
        Assert.Equal(HttpStatusCode.Created, register.StatusCode);
        Assert.Equal("\"auth\";q=7;w=60", Header(register, "RateLimit-Policy"));
        Assert.StartsWith("\"auth\";r=6;t=", Header(register, "RateLimit"), StringComparison.Ordinal);

        // Another email from the same address: the same partition, so one fewer remains.
        using var login = await Http.LoginAsync(UniqueEmail(), StrongPassword);
        Assert.Equal(HttpStatusCode.Unauthorized, login.StatusCode);
        Assert.Equal("\"auth\";q=7;w=60", Header(login, "RateLimit-Policy"));
        Assert.StartsWith("\"auth\";r=5;t=", Header(login, "RateLimit"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_current_key_route_is_under_the_ingest_policy_with_a_bucket_per_key()
    {
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        using var created = await Http.SendWithTokenAsync(HttpMethod.Post, "/api/v1/keys", token, new { name = "second" });
        var secondKey = (await DataAsync(created, HttpStatusCode.Created)).GetProperty("apiKey").GetString()!;

        using var first = await Http.GetWithApiKeyAsync("/api/v1/keys/current", client.ApiKey);
        using var again = await Http.GetWithApiKeyAsync("/api/v1/keys/current", client.ApiKey);
        using var second = await Http.GetWithApiKeyAsync("/api/v1/keys/current", secondKey);

        foreach (var response in new[] { first, again, second })
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("\"ingest\";q=11;w=220", Header(response, "RateLimit-Policy"));
        }

        Assert.StartsWith("\"ingest\";r=10;", Header(first, "RateLimit"), StringComparison.Ordinal);
        Assert.StartsWith("\"ingest\";r=9;", Header(again, "RateLimit"), StringComparison.Ordinal);
        // The same client's other key has a bucket of its own.
        Assert.StartsWith("\"ingest\";r=10;", Header(second, "RateLimit"), StringComparison.Ordinal);
    }

}
