using System.Buffers;
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

    /// <summary>The longest header remembered: Tracker's tokens are a few hundred characters.</summary>
    internal const int MaxHeaderLength = 2_048;

    private const string Scheme = "Bearer ";

    private readonly MemoryCache _valid = new(new MemoryCacheOptions { SizeLimit = MaxTokens });

    /// <summary>The identity a header's token proved, and the client it names; false if the header is not remembered.</summary>
    public bool TryGet(string header, out RememberedToken token)
    {
        if (header.Length <= MaxHeaderLength && _valid.TryGetValue(header, out RememberedToken? found) && found is not null)
        {
            token = found;
            return true;
        }

        token = null!;
        return false;
    }

    /// <summary>
    /// Remembers a header whose token was validated in full, until <paramref name="expires"/> (the token's own expiry,
    /// without the clock skew validation allows: remembering stops earlier than validation would, never later). Only
    /// the one canonical header of a token is remembered, <c>Bearer</c>, one space and the token: JwtBearer also
    /// accepts any case of the scheme and any whitespace around the token (Unicode's too), and remembering each such
    /// variant would let one token fill the memory with copies of itself padded to the size of the request's headers.
    /// </summary>
    public void Remember(string header, RememberedToken token, DateTimeOffset expires)
    {
        if (!IsCanonical(header))
        {
            return;
        }

        var now = time.GetUtcNow();
        var until = expires < now + MaxAge ? expires : now + MaxAge;
        if (until > now)
        {
            // Relative: the cache's own clock decides when an entry has expired, whatever the time provider says.
            _ = _valid.Set(header, token, new MemoryCacheEntryOptions { AbsoluteExpirationRelativeToNow = until - now, Size = 1 });
        }
    }

    public void Dispose() => _valid.Dispose();

    // A compact JWT is base64url parts and dots: anything else after the scheme's one space is padding. An allowlist,
    // not a list of whitespace: JwtBearer trims Unicode's whitespace too, which Kestrel decodes from UTF-8 headers.
    private static readonly SearchValues<char> TokenCharacters =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.");

    private static bool IsCanonical(string header) =>
        header.Length <= MaxHeaderLength
        && header.StartsWith(Scheme, StringComparison.Ordinal)
        && !header.AsSpan(Scheme.Length).ContainsAnyExcept(TokenCharacters);
}

/// <summary>What a remembered token proved. The identity is shared by every request of that token; nothing in this API
/// modifies an identity.</summary>
internal sealed record RememberedToken(ClaimsIdentity Identity, Guid ClientId);
