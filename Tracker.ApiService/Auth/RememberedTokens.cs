using System.Security.Claims;
using Microsoft.Extensions.Caching.Memory;

namespace Tracker.ApiService.Auth;

/// <summary>
/// The bearer tokens this instance validated in full, by the very <c>Authorization</c> header that carried them: a
/// client sends the same header with every request for its token's lifetime, and validating it again each time
/// (decoding, HMAC, claims, and JwtBearer's own per-request work around them) was the largest single cost of a cached
/// usage read (docs/performance.md). An entry lasts until the token expires, and at most <see cref="MaxAge"/>.
/// </summary>
/// <remarks>A singleton, so that the container disposes it.</remarks>
internal sealed class RememberedTokens(TimeProvider time) : IDisposable
{
    /// <summary>At most this many tokens are remembered; past it a new token is validated in full, not remembered, until
    /// the cache has compacted (it drops the least recently used in the background).</summary>
    internal const int MaxTokens = 10_000;

    /// <summary>A remembered token is validated afresh after this long even if it is still valid.</summary>
    internal static readonly TimeSpan MaxAge = TimeSpan.FromMinutes(5);

    private readonly MemoryCache _valid = new(new MemoryCacheOptions { SizeLimit = MaxTokens });

    /// <summary>The identity a header's token proved, and the client it names; false if the header is not remembered.</summary>
    public bool TryGet(string header, out RememberedToken token)
    {
        if (_valid.TryGetValue(header, out RememberedToken? found) && found is not null)
        {
            token = found;
            return true;
        }

        token = null!;
        return false;
    }

    /// <summary>
    /// Remembers a header whose token was validated in full, until <paramref name="expires"/> (the token's own expiry,
    /// without the clock skew validation allows: remembering stops earlier than validation would, never later).
    /// </summary>
    public void Remember(string header, RememberedToken token, DateTimeOffset expires)
    {
        var now = time.GetUtcNow();
        var until = expires < now + MaxAge ? expires : now + MaxAge;
        if (until > now)
        {
            _ = _valid.Set(header, token, new MemoryCacheEntryOptions { AbsoluteExpiration = until, Size = 1 });
        }
    }

    public void Dispose() => _valid.Dispose();
}

/// <summary>What a remembered token proved. The identity is shared by every request of that token; nothing in this API
/// modifies an identity.</summary>
internal sealed record RememberedToken(ClaimsIdentity Identity, Guid ClientId);
