using System.Net;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.ProblemAssertions;

namespace Tracker.Tests.Api;

/// <summary>Expiry is checked with the default 30 s of clock skew: a little past it is tolerated, well past it is not.</summary>
[Collection(nameof(RealServers))]
public sealed class TokenClockSkewTests(ServersFixture servers) : ApiTest(servers)
{
    private RegisteredClient _client = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _client = await Http.RegisterNewAsync();
    }

    [Fact]
    public async Task A_token_that_expired_20_seconds_ago_is_accepted_within_the_default_skew()
    {
        using var response = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", TokenExpiring(DateTime.UtcNow.AddSeconds(-20)));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_token_that_expired_60_seconds_ago_is_refused()
    {
        using var response = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", TokenExpiring(DateTime.UtcNow.AddSeconds(-60)));

        await AssertProblemAsync(response, HttpStatusCode.Unauthorized);
        Assert.Contains(response.Headers.WwwAuthenticate, challenge => challenge.Scheme == "Bearer");
    }

    // Signed as the server signs (its key, HS256, issuer, audience, subject): only the expiry differs from a login's token.
    private string TokenExpiring(DateTime expires) => AccessTokens.Expiring(Factory.JwtSigningKey, _client.Id, expires);
}
