using System.Net;
using System.Security.Claims;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
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
    private string TokenExpiring(DateTime expires) =>
        new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = "tracker",
            Audience = "tracker-api",
            IssuedAt = expires.AddMinutes(-10),
            NotBefore = expires.AddMinutes(-10),
            Expires = expires,
            Subject = new ClaimsIdentity([new Claim(JwtRegisteredClaimNames.Sub, _client.Id.ToString())]),
            SigningCredentials = new SigningCredentials(
                new SymmetricSecurityKey(Encoding.UTF8.GetBytes(Factory.JwtSigningKey)), SecurityAlgorithms.HmacSha256),
        });
}
