using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.ProblemAssertions;

namespace Tracker.Tests.Api;

/// <summary>Every way to forge or misuse an access token is a 401 with WWW-Authenticate, never access.</summary>
[Collection(nameof(RealServers))]
public sealed class TokenForgeryTests(ServersFixture servers) : ApiTest(servers)
{
    private RegisteredClient _client = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _client = await Http.RegisterNewAsync();
    }

    [Fact]
    public async Task A_token_signed_as_the_server_signs_is_accepted()
    {
        // The control: the forging helper itself makes valid tokens, so each refusal below is about one change.
        using var response = await GetKeysAsync(Forge());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public Task No_token_is_refused() => AssertRefusedAsync(null);

    [Fact]
    public Task Garbage_is_refused() => AssertRefusedAsync("not.a.token");

    [Fact]
    public Task An_unsigned_alg_none_token_is_refused()
    {
        var header = Base64UrlEncoder.Encode("""{"alg":"none","typ":"JWT"}""");
        var payload = Base64UrlEncoder.Encode(
            $$"""{"sub":"{{_client.Id}}","iss":"tracker","aud":"tracker-api","exp":{{DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds()}}}""");
        return AssertRefusedAsync($"{header}.{payload}.");
    }

    [Fact]
    public Task A_token_signed_with_HS512_and_the_right_key_is_refused() =>
        AssertRefusedAsync(Forge(algorithm: SecurityAlgorithms.HmacSha512));

    [Fact]
    public Task A_token_signed_with_RS256_is_refused()
    {
        using var rsa = RSA.Create(2048);
        var credentials = new SigningCredentials(new RsaSecurityKey(rsa), SecurityAlgorithms.RsaSha256);
        return AssertRefusedAsync(Forge(credentials: credentials));
    }

    [Fact]
    public Task A_token_signed_with_another_key_is_refused() =>
        AssertRefusedAsync(Forge(credentials: new SigningCredentials(
            new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(64)), SecurityAlgorithms.HmacSha256)));

    [Fact]
    public async Task A_tampered_payload_is_refused()
    {
        var victim = await Http.RegisterNewAsync();
        var parts = Forge().Split('.');
        var tampered = Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(parts[1])).Replace(_client.Id.ToString(), victim.Id.ToString(), StringComparison.Ordinal);
        await AssertRefusedAsync($"{parts[0]}.{Base64UrlEncoder.Encode(tampered)}.{parts[2]}");
    }

    [Fact]
    public Task An_expired_token_is_refused_beyond_the_30_second_skew() =>
        AssertRefusedAsync(Forge(expires: DateTime.UtcNow.AddSeconds(-31)));

    [Fact]
    public Task A_token_for_another_issuer_is_refused() => AssertRefusedAsync(Forge(issuer: "someone-else"));

    [Fact]
    public Task A_token_for_another_audience_is_refused() => AssertRefusedAsync(Forge(audience: "another-api"));

    [Fact]
    public Task A_token_without_expiry_is_refused() => AssertRefusedAsync(Forge(withoutExpiry: true));

    [Fact]
    public Task A_valid_token_for_a_client_that_does_not_exist_is_refused() => AssertRefusedAsync(Forge(subject: Guid.NewGuid().ToString()));

    [Fact]
    public Task A_valid_token_without_a_subject_is_refused() => AssertRefusedAsync(Forge(subject: null));

    [Fact]
    public Task An_api_key_is_no_access_token() => AssertRefusedAsync(_client.ApiKey);

    private string Forge(
        string? algorithm = null,
        SigningCredentials? credentials = null,
        string issuer = "tracker",
        string audience = "tracker-api",
        string? subject = "",
        DateTime? expires = null,
        bool withoutExpiry = false)
    {
        var now = DateTime.UtcNow;
        credentials ??= new SigningCredentials(
            new SymmetricSecurityKey(Encoding.UTF8.GetBytes(Factory.JwtSigningKey)), algorithm ?? SecurityAlgorithms.HmacSha256);
        var claims = new List<Claim>();
        if (subject is not null)
        {
            claims.Add(new Claim(JwtRegisteredClaimNames.Sub, subject.Length == 0 ? _client.Id.ToString() : subject));
        }

        DateTime? expiry = withoutExpiry ? null : expires ?? now.AddMinutes(10);
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            IssuedAt = expiry is null ? now : expiry.Value.AddMinutes(-10),
            NotBefore = expiry is null ? now : expiry.Value.AddMinutes(-10),
            Expires = expiry,
            Subject = new ClaimsIdentity(claims),
            SigningCredentials = credentials,
        });
    }

    private async Task<HttpResponseMessage> GetKeysAsync(string? token) =>
        await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", token);

    private async Task AssertRefusedAsync(string? token)
    {
        using var response = await GetKeysAsync(token);

        await AssertProblemAsync(response, HttpStatusCode.Unauthorized);
        Assert.Contains(response.Headers.WwwAuthenticate, challenge => challenge.Scheme == "Bearer");
    }
}
