using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Tracker.ApiService.Auth;

/// <summary>
/// The bearer scheme: ASP.NET Core's <see cref="JwtBearerHandler"/> validates a token (signature, issuer, audience,
/// lifetime) the first time this instance sees it; after that the same <c>Authorization</c> header (its canonical
/// form, <see cref="RememberedTokens.Remember"/>) is answered from <see cref="RememberedTokens"/> until the token
/// expires. A header that fails is never remembered, so a forged or expired token costs a full validation every time.
/// </summary>
/// <remarks>
/// Written by hand because the framework has no such memory, and remembering inside the token handler (which this
/// replaced) still left JwtBearer's own work on every request: cloning its validation parameters, extracting the
/// token, building its contexts and properties, about 3 kB of a cached usage read's 9.8 kB of allocation
/// (docs/performance.md). Either way the token must name an existing client, checked on every request, here: a lookup
/// that fails because the database is down throws, and reaches the storage exception handler as a 503.
/// </remarks>
internal sealed class RememberingBearerHandler(
    IOptionsMonitor<JwtBearerOptions> options, ILoggerFactory logger, UrlEncoder encoder,
    RememberedTokens remembered, ClientDirectory directory)
    : JwtBearerHandler(options, logger, encoder)
{
    private const string NoSuchClient = "The token names no existing client.";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        // One header exactly: JwtBearer joins several into one value, which no token matches.
        var headers = Request.Headers.Authorization;
        var header = headers.Count == 1 ? headers[0] : null;
        if (header is not null && remembered.TryGet(header, out var token))
        {
            return await directory.ExistsAsync(token.ClientId, Context.RequestAborted)
                ? AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(token.Identity), Scheme.Name))
                : AuthenticateResult.Fail(NoSuchClient);
        }

        var result = await base.HandleAuthenticateAsync();
        if (!result.Succeeded)
        {
            return result;
        }

        if (result.Principal.Identity is not ClaimsIdentity identity
            || !Guid.TryParse(identity.FindFirst(JwtRegisteredClaimNames.Sub)?.Value, out var clientId)
            || !await directory.ExistsAsync(clientId, Context.RequestAborted))
        {
            return AuthenticateResult.Fail(NoSuchClient);
        }

        // JwtBearer sets ExpiresUtc to the token's exp; a token without one is refused (RequireExpirationTime).
        if (header is not null && result.Properties?.ExpiresUtc is { } expires)
        {
            remembered.Remember(header, new RememberedToken(identity, clientId), expires);
        }

        return result;
    }
}
