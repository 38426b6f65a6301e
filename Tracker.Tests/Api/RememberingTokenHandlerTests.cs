using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;
using Tracker.ApiService.Auth;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.Api;

/// <summary>
/// The bearer scheme remembers the tokens it validated: the same token is answered from memory until it expires, and
/// nothing else is (a token that fails, or any other string, is validated in full every time). The handler is the
/// API's own, with its client directory on the real database.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class RememberingTokenHandlerTests(ServersFixture servers) : ApiTest(servers)
{
    private RememberingTokenHandler _handler = null!;
    private RegisteredClient _client = null!;

    private TokenValidationParameters Parameters => new()
    {
        ValidIssuer = "tracker",
        ValidAudience = "tracker-api",
        IssuerSigningKey = Key,
        ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
        ClockSkew = TimeSpan.Zero,
    };

    private SymmetricSecurityKey Key => new(Encoding.UTF8.GetBytes(Factory.JwtSigningKey));

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _client = await Http.RegisterNewAsync();
        _handler = Factory.Services.GetRequiredService<RememberingTokenHandler>();
    }

    [Fact]
    public async Task A_valid_token_is_answered_from_memory_the_second_time()
    {
        var token = Token(_client.Id, DateTime.UtcNow.AddMinutes(10));

        var first = await _handler.ValidateTokenAsync(token, Parameters);
        var second = await _handler.ValidateTokenAsync(token, Parameters);

        Assert.True(first.IsValid);
        Assert.Same(first, second);
    }

    [Fact]
    public async Task A_remembered_token_is_refused_once_it_expired()
    {
        var expires = DateTime.UtcNow.AddSeconds(2);
        var token = Token(_client.Id, expires);
        Assert.True((await _handler.ValidateTokenAsync(token, Parameters)).IsValid);

        // The token's exp is in whole seconds, at most the time asked for.
        await Task.Delay(expires - DateTime.UtcNow + TimeSpan.FromMilliseconds(300));

        Assert.False((await _handler.ValidateTokenAsync(token, Parameters)).IsValid);
    }

    [Fact]
    public async Task A_token_that_failed_is_not_remembered_and_a_tampered_copy_of_a_remembered_one_is_refused()
    {
        var token = Token(_client.Id, DateTime.UtcNow.AddMinutes(10));
        Assert.True((await _handler.ValidateTokenAsync(token, Parameters)).IsValid);
        var tampered = token[..^2] + (token[^2] == 'A' ? "B" : "A") + token[^1];

        var first = await _handler.ValidateTokenAsync(tampered, Parameters);
        var second = await _handler.ValidateTokenAsync(tampered, Parameters);

        Assert.False(first.IsValid);
        Assert.False(second.IsValid);
        Assert.NotSame(first, second);
    }

    [Fact]
    public async Task A_well_signed_token_of_a_client_that_does_not_exist_is_refused_every_time_though_remembered()
    {
        var token = Token(Guid.NewGuid(), DateTime.UtcNow.AddMinutes(10));

        for (var attempt = 0; attempt < 2; attempt++)
        {
            using var response = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/daily", token);
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, response.StatusCode);
        }
    }

    private string Token(Guid clientId, DateTime expires) => AccessTokens.Expiring(Factory.JwtSigningKey, clientId, expires);
}
