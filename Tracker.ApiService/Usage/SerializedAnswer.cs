using System.Buffers;
using System.ComponentModel;
using System.IO.Compression;
using Microsoft.Extensions.Caching.Hybrid;
using Tracker.ApiService.Http;

namespace Tracker.ApiService.Usage;

/// <summary>
/// What <see cref="UsageAnswerCache"/> holds: an answer's response body, serialised once when it was loaded: JSON in
/// UTF-8, gzipped from <see cref="GzipFromBytes"/> on. Never modified, so the memory tier shares one instance instead
/// of copying it per request.
/// </summary>
/// <remarks>
/// Large answers are kept gzipped because they are what fills the memory tier: a 30-day <c>series</c> by endpoint
/// with percentiles is about 37 kB of JSON, so a thousand busy clients' answers take 37 MB of it. Gzipped they take a
/// fraction of that, in memory and in Redis, and are sent as they are to clients that accept gzip: less for the
/// kernel to send, too. Smaller answers (a <c>daily</c> count is a few hundred bytes) stay as they are: little to
/// save, and a client that does not accept gzip would pay a decompression on every request of the hottest reads.
/// </remarks>
[ImmutableObject(true)]
public sealed class SerializedAnswer
{
    /// <summary>The JSON bodies at least this long are kept gzipped.</summary>
    public const int GzipFromBytes = 8 * 1024;

    // RFC 1952's first two bytes. A JSON body never starts with 0x1F (a control character), so they tell the two apart.
    private static ReadOnlySpan<byte> GzipMagic => [0x1F, 0x8B];

    private SerializedAnswer(byte[] bytes, bool gzipped) => Body = new JsonBody(bytes, gzipped);

    public JsonBody Body { get; }

    /// <summary>An answer's JSON body, gzipped if <paramref name="gzipLarge"/> and it is at least <see cref="GzipFromBytes"/> long.</summary>
    public static SerializedAnswer Of(byte[] utf8Json, bool gzipLarge)
    {
        if (!gzipLarge || utf8Json.Length < GzipFromBytes)
        {
            return new(utf8Json, gzipped: false);
        }

        // The fastest level: it runs in the request that missed, and the largest answers (over a megabyte of JSON for
        // two weeks of hours by endpoint with percentiles) would take tens of milliseconds at the default.
        var gzipped = new MemoryStream(utf8Json.Length / 4);
        using (var gzip = new GZipStream(gzipped, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(utf8Json);
        }

        return new(gzipped.ToArray(), gzipped: true);
    }

    /// <summary>
    /// Stores the bytes as they are (HybridCache's default would write them as a base64 JSON string), and "none" (a
    /// cached null: an answer that does not exist) as no bytes, which no JSON answer is.
    /// </summary>
    internal sealed class Serializer : IHybridCacheSerializer<SerializedAnswer?>
    {
        public SerializedAnswer? Deserialize(ReadOnlySequence<byte> source)
        {
            if (source.IsEmpty)
            {
                return null;
            }

            var bytes = source.ToArray();
            return new(bytes, bytes.AsSpan().StartsWith(GzipMagic));
        }

        public void Serialize(SerializedAnswer? value, IBufferWriter<byte> target)
        {
            if (value is not null)
            {
                target.Write(value.Body.Bytes.Span);
            }
        }
    }
}
