using System.Buffers;
using System.ComponentModel;
using Microsoft.Extensions.Caching.Hybrid;

namespace Tracker.ApiService.Usage;

/// <summary>
/// What <see cref="UsageAnswerCache"/> holds: an answer's response body, JSON in UTF-8, serialised once when it was
/// loaded. Never modified, so the memory tier shares one instance instead of copying it per request.
/// </summary>
[ImmutableObject(true)]
public sealed class SerializedAnswer(byte[] utf8Json)
{
    public ReadOnlyMemory<byte> Utf8Json { get; } = utf8Json;

    /// <summary>
    /// Stores the bytes as they are (HybridCache's default would write them as a base64 JSON string), and "none" (a
    /// cached null: an answer that does not exist) as no bytes, which no JSON answer is.
    /// </summary>
    internal sealed class Serializer : IHybridCacheSerializer<SerializedAnswer?>
    {
        public SerializedAnswer? Deserialize(ReadOnlySequence<byte> source) => source.IsEmpty ? null : new(source.ToArray());

        public void Serialize(SerializedAnswer? value, IBufferWriter<byte> target)
        {
            if (value is not null)
            {
                target.Write(value.Utf8Json.Span);
            }
        }
    }
}
