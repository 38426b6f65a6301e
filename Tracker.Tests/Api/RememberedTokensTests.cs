using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Tracker.ApiService.Auth;
using Tracker.ApiService.Caching;
using Tracker.Data;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.Api;

/// <summary>
/// The bearer scheme remembers the tokens it validated: the same Authorization header is answered from memory until
/// its token expires, and nothing else is (a token that fails, or any other string, is validated in full every time);
/// either way the token must name an existing client. The API's own scheme, with its client directory on the real
/// database.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class RememberedTokensTests(ServersFixture servers) : ApiTest(servers)
{
    private RememberedTokens _remembered = null!;
    private RegisteredClient _client = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _client = await Http.RegisterNewAsync();
        _remembered = Factory.Services.GetRequiredService<RememberedTokens>();
    }

    [Fact]
    public async Task A_valid_token_is_remembered_with_its_identity_and_client_and_answers_again_from_memory()
    {
        var token = Token(_client.Id, DateTime.UtcNow.AddMinutes(10));
        Assert.False(_remembered.TryGet("Bearer " + token, out _));

        await AssertAnswersAsync(token, HttpStatusCode.OK);
        Assert.True(_remembered.TryGet("Bearer " + token, out var remembered));
        Assert.Equal(_client.Id, remembered.ClientId);
        Assert.Equal(_client.Id.ToString(), remembered.Identity.FindFirst("sub")?.Value);

        // Answered again, from memory: the entry is the same one (a full validation would have stored a new one).
        using var second = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/daily", token);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Same(remembered, _remembered.TryGet("Bearer " + token, out var again) ? again : null);
    }

    [Fact]
    public async Task A_remembered_token_is_forgotten_once_it_expired()
    {
        // Far enough ahead that a cold first request still finds the token unexpired, so it is remembered.
        var expires = DateTime.UtcNow.AddSeconds(5);
        var token = Token(_client.Id, expires);
        await AssertAnswersAsync(token, HttpStatusCode.OK);
        Assert.True(_remembered.TryGet("Bearer " + token, out _));

        // The token's exp is in whole seconds, at most the time asked for.
        await Task.Delay(expires - DateTime.UtcNow + TimeSpan.FromMilliseconds(300));

        // Past its expiry only a full validation (with its clock skew) can accept it.
        Assert.False(_remembered.TryGet("Bearer " + token, out _));
    }

    [Fact]
    public async Task A_token_that_failed_is_not_remembered_and_a_tampered_copy_of_a_remembered_one_is_refused()
    {
        var token = Token(_client.Id, DateTime.UtcNow.AddMinutes(10));
        await AssertAnswersAsync(token, HttpStatusCode.OK);
        var tampered = token[..^2] + (token[^2] == 'A' ? "B" : "A") + token[^1];

        await AssertAnswersAsync(tampered, HttpStatusCode.Unauthorized);
        await AssertAnswersAsync(tampered, HttpStatusCode.Unauthorized);

        Assert.False(_remembered.TryGet("Bearer " + tampered, out _));
    }

    [Fact]
    public async Task A_token_that_expired_within_the_clock_skew_is_accepted_but_not_remembered()
    {
        var token = Token(_client.Id, DateTime.UtcNow.AddSeconds(-20));

        await AssertAnswersAsync(token, HttpStatusCode.OK);

        Assert.False(_remembered.TryGet("Bearer " + token, out _));
    }

    [Fact]
    public async Task A_well_signed_token_of_a_client_that_does_not_exist_is_refused_every_time_and_not_remembered()
    {
        var token = Token(Guid.NewGuid(), DateTime.UtcNow.AddMinutes(10));

        await AssertAnswersAsync(token, HttpStatusCode.Unauthorized);
        await AssertAnswersAsync(token, HttpStatusCode.Unauthorized);

        Assert.False(_remembered.TryGet("Bearer " + token, out _));
    }

    [Fact]
    public async Task A_padded_header_is_answered_but_only_the_canonical_one_is_remembered()
    {
        var token = Token(_client.Id, DateTime.UtcNow.AddMinutes(10));

        // JwtBearer accepts any case of the scheme and any whitespace before the token; each would be a header of its own.
        foreach (var padded in new[] { "Bearer    " + token, "bearer " + token, "Bearer \t" + token })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/usages/daily");
            request.Headers.TryAddWithoutValidation("Authorization", padded);
            using var response = await Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.False(_remembered.TryGet(padded, out _), padded);
        }

        await AssertAnswersAsync(token, HttpStatusCode.OK);
        Assert.True(_remembered.TryGet("Bearer " + token, out _));
    }

    [Fact]
    public async Task A_remembered_token_of_a_client_that_no_longer_exists_is_refused()
    {
        var token = Token(_client.Id, DateTime.UtcNow.AddMinutes(10));
        await AssertAnswersAsync(token, HttpStatusCode.OK);
        Assert.True(_remembered.TryGet("Bearer " + token, out var remembered));

        // Clients are not deleted by the API; gone from the database and from the cache, as if they had never been.
        using (var scope = Factory.Services.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<TrackerDbContext>();
            Assert.Equal(1, await db.Clients.Where(client => client.Id == _client.Id).ExecuteDeleteAsync());
        }

        await Factory.Services.GetRequiredService<TieredCache>().RemoveAsync(ClientDirectory.CacheKey(_client.Id), CancellationToken.None);

        // Still remembered, and refused all the same: remembering a token does not skip the client check.
        Assert.True(_remembered.TryGet("Bearer " + token, out var before));
        Assert.Same(remembered, before);
        await AssertAnswersAsync(token, HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Two_authorization_header_lines_are_refused_even_when_one_of_them_is_remembered()
    {
        var token = Token(_client.Id, DateTime.UtcNow.AddMinutes(10));
        await AssertAnswersAsync(token, HttpStatusCode.OK);

        // Over a socket of its own: HttpClient would join the two values into one line.
        var status = await StatusOverSocketAsync(Encoding.ASCII.GetBytes($"Authorization: Bearer {token}\r\nAuthorization: Bearer {token}\r\n"));

        Assert.StartsWith("HTTP/1.1 401 ", status, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_header_padded_with_unicode_whitespace_is_answered_but_not_remembered()
    {
        var token = Token(_client.Id, DateTime.UtcNow.AddMinutes(10));

        // A no-break space after the token, in UTF-8 (HttpClient sends only ASCII): JwtBearer trims it as whitespace.
        var status = await StatusOverSocketAsync([.. Encoding.ASCII.GetBytes($"Authorization: Bearer {token}"), 0xC2, 0xA0, .. "\r\n"u8]);

        Assert.StartsWith("HTTP/1.1 200 ", status, StringComparison.Ordinal);
        Assert.False(_remembered.TryGet($"Bearer {token}\u00A0", out _));
        Assert.False(_remembered.TryGet($"Bearer {token}", out _));
    }

    /// <summary>The status line of a usage read sent with exactly these header lines, over a connection of its own.</summary>
    private async Task<string?> StatusOverSocketAsync(byte[] headerLines)
    {
        var server = Http.BaseAddress!;
        using var socket = new TcpClient();
        await socket.ConnectAsync(server.Host, server.Port);
        var stream = socket.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET /api/v1/usages/daily HTTP/1.1\r\nHost: {server.Authority}\r\nConnection: close\r\n"));
        await stream.WriteAsync(headerLines);
        await stream.WriteAsync("\r\n"u8.ToArray());
        using var reader = new StreamReader(stream, Encoding.ASCII);
        return await reader.ReadLineAsync();
    }

    private async Task AssertAnswersAsync(string token, HttpStatusCode expected)
    {
        using var response = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/daily", token);
        Assert.Equal(expected, response.StatusCode);
    }

    private string Token(Guid clientId, DateTime expires) => AccessTokens.Expiring(Factory.JwtSigningKey, clientId, expires);
}
