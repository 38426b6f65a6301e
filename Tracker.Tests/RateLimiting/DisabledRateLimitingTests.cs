using System.Net;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;

namespace Tracker.Tests.RateLimiting;

/// <summary><c>RateLimiting:Enabled=false</c> turns every limit off, and with it the headers that announce them.</summary>
[Collection(nameof(RealServers))]
public sealed class DisabledRateLimitingTests(ServersFixture servers) : ApiTest(servers, new Dictionary<string, string?>
{
    ["RateLimiting:Enabled"] = "false",
    // Limits of one: with the limiter on, the second request of each policy would be refused.
    ["RateLimiting:Auth:PermitLimit"] = "1",
    ["RateLimiting:Usage:PermitLimit"] = "1",
    ["RateLimiting:AuthFailures:PermitLimit"] = "1",
    ["RateLimiting:Ingest:BurstLimit"] = "1",
    ["RateLimiting:Ingest:TokensPerSecond"] = "0.001",
})
{
    [Fact]
    public async Task With_rate_limiting_disabled_no_policy_refuses_and_no_response_carries_rate_limit_headers()
    {
        var client = await Http.RegisterNewAsync();
        var responses = new List<HttpResponseMessage>();
        try
        {
            for (var round = 0; round < 3; round++)
            {
                responses.Add(await Http.LoginAsync(client.Email, client.Password));
                responses.Add(await Http.PostLogAsync(client.ApiKey, Log()));
                responses.Add(await Http.GetWithApiKeyAsync("/api/v1/keys/current", client.ApiKey));
            }

            var token = await Http.LoginTokenAsync(client);
            for (var round = 0; round < 3; round++)
            {
                responses.Add(await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", token));
                responses.Add(await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/daily", token));
            }

            // Failed API-key authentications are not limited either: each is a 401, never a 429.
            for (var attempt = 0; attempt < 3; attempt++)
            {
                using var guess = await Http.GetWithApiKeyAsync("/api/v1/keys/current", "ak_" + new string('x', 43));
                Assert.Equal(HttpStatusCode.Unauthorized, guess.StatusCode);
                Assert.False(guess.Headers.Contains("RateLimit-Policy"));
            }

            Assert.All(responses, response =>
            {
                Assert.True(response.IsSuccessStatusCode, $"{response.RequestMessage?.RequestUri}: {(int)response.StatusCode}");
                Assert.False(response.Headers.Contains("RateLimit"), $"{response.RequestMessage?.RequestUri} carries RateLimit");
                Assert.False(response.Headers.Contains("RateLimit-Policy"), $"{response.RequestMessage?.RequestUri} carries RateLimit-Policy");
            });
        }
        finally
        {
            responses.ForEach(response => response.Dispose());
        }
    }
}
