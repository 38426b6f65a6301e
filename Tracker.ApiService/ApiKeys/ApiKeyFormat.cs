using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Tracker.Data.Entities;

namespace Tracker.ApiService.ApiKeys;

/// <summary>
/// API keys look like <c>ak_</c> followed by 256 bits from the OS CSPRNG in base64url (46 characters in all).
/// Only the SHA-256 of the whole key is stored: a key has full entropy, so a fast hash is enough to make a
/// leaked table useless, and it keeps the lookup on every ingest request cheap.
/// </summary>
public static class ApiKeyFormat
{
    public const string Prefix = "ak_";
    private const int RandomBytes = 32;

    /// <summary>Length of every key this format produces.</summary>
    public static readonly int KeyLength = Prefix.Length + Base64Url.GetEncodedLength(RandomBytes);

    public static string Generate() => Prefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(RandomBytes));

    /// <summary>The part shown in key lists so an owner can tell keys apart: the first 8 characters.</summary>
    public static string DisplayPrefix(string key) => key[..ApiKey.PrefixLength];

    public static byte[] Hash(string key)
    {
        Span<byte> utf8 = stackalloc byte[KeyLength];
        var written = Encoding.UTF8.GetBytes(key, utf8);
        return SHA256.HashData(utf8[..written]);
    }

    /// <summary>Whether <paramref name="candidate"/> has the shape of a key; anything else is refused before any lookup.</summary>
    public static bool IsWellFormed(string? candidate) =>
        candidate is not null
        && candidate.Length == KeyLength
        && candidate.StartsWith(Prefix, StringComparison.Ordinal)
        && Base64Url.IsValid(candidate.AsSpan(Prefix.Length));
}
