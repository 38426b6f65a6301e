using System.Buffers.Binary;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;

namespace Tracker.ApiService.Http;

/// <summary>
/// A JSON response body kept for sending many times: UTF-8, or gzipped (RFC 1952) when <see cref="Gzipped"/>. A large
/// answer held gzipped takes a fraction of the memory and of the bytes sent, to the clients that accept gzip (browsers
/// and most HTTP libraries); a client that does not gets it decompressed, at some CPU per request.
/// </summary>
public readonly record struct JsonBody(ReadOnlyMemory<byte> Bytes, bool Gzipped)
{
    /// <summary>The content coding's name.</summary>
    public const string Gzip = "gzip";

    /// <summary>
    /// Whether an <c>Accept-Encoding</c> header accepts gzip (RFC 9110, 12.5.3): a <c>gzip</c> (or <c>x-gzip</c>) entry
    /// decides by its weight (the first one, if given twice), otherwise a <c>*</c> entry does; no header, or one that
    /// cannot be parsed as a whole, means only the identity coding.
    /// </summary>
    public static bool AcceptsGzip(StringValues acceptEncoding)
    {
        if (StringValues.IsNullOrEmpty(acceptEncoding) || !StringWithQualityHeaderValue.TryParseStrictList(acceptEncoding, out var codings))
        {
            return false;
        }

        double? anyCoding = null;
        foreach (var coding in codings)
        {
            if (coding.Value.Equals(Gzip, StringComparison.OrdinalIgnoreCase) || coding.Value.Equals("x-gzip", StringComparison.OrdinalIgnoreCase))
            {
                return (coding.Quality ?? 1) > 0;
            }

            if (coding.Value.Equals("*", StringComparison.Ordinal))
            {
                anyCoding ??= coding.Quality ?? 1;
            }
        }

        return anyCoding > 0;
    }

    /// <summary>The length of a gzipped body once decompressed: its trailer's last field (the length modulo 2³²).</summary>
    public static long GzippedLength(ReadOnlySpan<byte> gzipped) => BinaryPrimitives.ReadUInt32LittleEndian(gzipped[^4..]);
}
