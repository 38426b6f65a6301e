using Microsoft.Extensions.Caching.Memory;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Tracker.ApiService.Auth;

/// <summary>
/// The bearer scheme's JWT handler: a token is valid when its signature, issuer, audience and lifetime are. It
/// remembers the tokens it found valid: a client sends the same token with every request for the token's lifetime,
/// and validating it again each time (decoding, HMAC, claims) was the largest single cost of a cached usage read
/// (docs/performance.md). A remembered answer is given only for the very same token string and only until the token
/// expires; a token that fails is never remembered, so a forged or expired one costs a full validation every time, as
/// before. That the subject is an existing client is checked after it, on every request (<see cref="AuthExtensions"/>):
/// a lookup that fails because the database is down must answer 503, and the bearer scheme turns anything a token
/// handler throws into a 401.
/// </summary>
/// <remarks>A singleton, so that the container disposes it; the bearer options hold it as their only handler.</remarks>
internal sealed class RememberingTokenHandler : JsonWebTokenHandler, IDisposable
{
    /// <summary>At most this many tokens are remembered; past it a new token is validated in full, not remembered, until
    /// the cache has compacted (it drops the least recently used in the background).</summary>
    internal const int MaxTokens = 10_000;

    /// <summary>A remembered answer is validated afresh after this long even if the token is still valid.</summary>
    private static readonly TimeSpan MaxAge = TimeSpan.FromMinutes(5);

    private readonly MemoryCache _valid = new(new MemoryCacheOptions { SizeLimit = MaxTokens });
    private readonly TimeProvider _time;

    public RememberingTokenHandler(TimeProvider time)
    {
        _time = time;
        // Claims keep the names they have in the token ("sub"), as JwtBearerOptions.MapInboundClaims = false asks.
        MapInboundClaims = false;
    }

    // The completed task itself is remembered, so that a remembered token costs no allocation. The principal built from
    // it shares its ClaimsIdentity with every request of that token; nothing in this API modifies an identity.
    public override Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters) =>
        _valid.TryGetValue(token, out Task<TokenValidationResult>? remembered) && remembered is not null
            ? remembered
            : ValidateAndRememberAsync(token, validationParameters);

    public void Dispose() => _valid.Dispose();

    private async Task<TokenValidationResult> ValidateAndRememberAsync(string token, TokenValidationParameters validationParameters)
    {
        var result = await base.ValidateTokenAsync(token, validationParameters);
        if (result is not { IsValid: true, SecurityToken: JsonWebToken validated })
        {
            return result;
        }

        // ValidTo is the token's expiry without the clock skew validation allows: remembering stops earlier than
        // validation would, never later.
        var now = _time.GetUtcNow();
        var expires = new DateTimeOffset(DateTime.SpecifyKind(validated.ValidTo, DateTimeKind.Utc));
        var until = expires < now + MaxAge ? expires : now + MaxAge;
        if (until > now)
        {
            _ = _valid.Set(token, Task.FromResult(result), new MemoryCacheEntryOptions { AbsoluteExpiration = until, Size = 1 });
        }

        return result;
    }
}
