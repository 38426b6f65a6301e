using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.Net.Http.Headers;
using Tracker.ApiService.Auth;

namespace Tracker.ApiService.ApiKeys;

/// <summary>
/// The ingest credential: <c>X-API-Key: ak_…</c>, or <c>Authorization: Bearer ak_…</c> for clients that can only
/// send bearer tokens. A missing, malformed, unknown or revoked key all fail the same way, so the answer tells
/// a caller nothing about which keys exist.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyStore store,
    ApiKeyUsageRecorder usage)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string HeaderName = "X-API-Key";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var presented = ReadPresentedKey(Request.Headers);
        if (presented is null)
        {
            return AuthenticateResult.NoResult();
        }

        if (!ApiKeyFormat.IsWellFormed(presented)
            || await store.FindActiveAsync(ApiKeyFormat.Hash(presented), Context.RequestAborted) is not { } key)
        {
            return AuthenticateResult.Fail("Invalid API key.");
        }

        usage.Record(key.Id);
        var identity = new ClaimsIdentity(
        [
            new Claim(JwtRegisteredClaimNames.Sub, key.ClientId.ToString()),
            new Claim(ClaimsPrincipalExtensions.ApiKeyIdClaim, key.Id.ToString()),
        ], SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.Append(HeaderNames.WWWAuthenticate, $"{SchemeName} realm=\"tracker\", header=\"{HeaderName}\"");
        Response.Headers.Append(HeaderNames.WWWAuthenticate, "Bearer realm=\"tracker\"");
        return Task.CompletedTask;
    }

    private static string? ReadPresentedKey(IHeaderDictionary headers)
    {
        if (headers.TryGetValue(HeaderName, out var apiKey))
        {
            return apiKey.Count == 1 ? apiKey[0] ?? string.Empty : string.Empty;
        }

        var authorization = headers.Authorization.ToString();
        const string bearer = "Bearer ";
        return authorization.StartsWith(bearer, StringComparison.OrdinalIgnoreCase)
            && authorization.AsSpan(bearer.Length).TrimStart().StartsWith(ApiKeyFormat.Prefix, StringComparison.Ordinal)
            ? authorization[bearer.Length..].Trim()
            : null;
    }
}
