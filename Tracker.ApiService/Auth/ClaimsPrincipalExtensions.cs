using System.Security.Claims;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Tracker.ApiService.Auth;

/// <summary>Reads the authenticated client from either scheme's principal.</summary>
public static class ClaimsPrincipalExtensions
{
    /// <summary>Claim holding the id of the API key a request authenticated with (API-key scheme only).</summary>
    public const string ApiKeyIdClaim = "api_key_id";

    /// <summary>The client id; the authentication handlers guarantee it is present on every authenticated principal.</summary>
    public static Guid GetClientId(this ClaimsPrincipal principal) =>
        Guid.TryParse(principal.FindFirstValue(JwtRegisteredClaimNames.Sub), out var clientId)
            ? clientId
            : throw new InvalidOperationException("The principal names no client; is the endpoint missing its authorization policy?");

    /// <summary>The id of the API key the request authenticated with (API-key scheme only).</summary>
    public static Guid GetApiKeyId(this ClaimsPrincipal principal) =>
        Guid.TryParse(principal.FindFirstValue(ApiKeyIdClaim), out var apiKeyId)
            ? apiKeyId
            : throw new InvalidOperationException("The principal names no API key; is the endpoint missing the ingest policy?");
}
