using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Tracker.ApiService.Http;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.Net.Http.Headers;
using Tracker.ApiService.Auth;
using Tracker.ApiService.RateLimiting;

namespace Tracker.ApiService.ApiKeys;

/// <summary>
/// The ingest credential: <c>X-API-Key: ak_…</c>, or <c>Authorization: Bearer ak_…</c> for clients that can only
/// send bearer tokens. A missing, malformed, unknown or revoked key all fail the same way, so the answer tells
/// a caller nothing about which keys exist. An IP that fails too often is refused with 429 before its key is
/// looked up at all (<see cref="FailedAuthenticationLimit"/>).
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyStore store,
    ApiKeyUsageRecorder usage,
    FailedAuthenticationLimit failures)
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

        var client = Context.Connection.RemoteIpAddress;
        ActiveApiKey? key;
        if (failures.IsBlocked(client, out var retryAfter))
        {
            // An address that keeps failing costs the database nothing more; but a tenant sharing it (NAT, a /64)
            // whose key is in use, so cached, keeps working: one guesser must not lock others out.
            key = ApiKeyFormat.IsWellFormed(presented)
                ? await store.FindCachedActiveAsync(ApiKeyFormat.Hash(presented), Context.RequestAborted)
                : null;
            if (key is null)
            {
                failures.TurnedAway();
                Context.Features.Set(new FailedTooOften(retryAfter));
                return AuthenticateResult.Fail("Too many failed authentications from this address.");
            }
        }
        else if (!ApiKeyFormat.IsWellFormed(presented)
            || (key = await store.FindActiveAsync(ApiKeyFormat.Hash(presented), Context.RequestAborted)) is null)
        {
            if (await failures.RecordFailureAsync(client) is { } refusal)
            {
                Context.Features.Set(new FailedTooOften(refusal.RetryAfter));
            }

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

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        if (Context.Features.Get<FailedTooOften>() is { } blocked)
        {
            var seconds = TooManyRequests.Seconds(blocked.RetryAfter);
            await TooManyRequests.WriteAsync(Context, seconds, "Too many failed authentications.",
                $"This address sent too many invalid API keys; retry after {seconds} s.");
            return;
        }

        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.Append(HeaderNames.WWWAuthenticate, $"{SchemeName} realm=\"tracker\", header=\"{HeaderName}\"");
        Response.Headers.Append(HeaderNames.WWWAuthenticate, "Bearer realm=\"tracker\"");
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

    /// <summary>Marks a request refused because its IP failed too often, for the challenge to answer 429.</summary>
    private sealed record FailedTooOften(TimeSpan RetryAfter);
}
