using System.Text;
using System.Text.Json;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// Counts the logs of a batch body (the elements of its top-level <c>logs</c> array) without building any of them,
/// so that the key's ingest budget can be charged before the body is parsed (<see cref="BatchPrepayment"/>).
/// </summary>
public static class BatchLogCount
{
    /// <summary>
    /// The elements of the top-level <c>logs</c> array (its name matched as the binder does, ignoring case), counted
    /// up to the first malformed token; 0 when the body is not an object or has no such array. The count is what
    /// the body holds, not whether it is valid: the binder still reads and checks every log.
    /// </summary>
    public static int Count(ReadOnlySpan<byte> json) => Count(json, out _);

    /// <summary>
    /// As <see cref="Count(ReadOnlySpan{byte})"/>, with the bytes of the counted logs' string values (as sent, so at
    /// least the characters they decode to): a bound on what the logs' strings hold that ignores the JSON around them.
    /// </summary>
    public static int Count(ReadOnlySpan<byte> json, out long stringBytes)
    {
        stringBytes = 0;
        // The binder skips a UTF-8 byte order mark; so must the count, or such a body is parsed before it pays.
        if (json.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            json = json[3..];
        }

        var reader = new Utf8JsonReader(json);
        var count = 0;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return 0;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isLogs = IsLogs(ref reader);
                if (!reader.Read())
                {
                    break;
                }

                if (!isLogs || reader.TokenType != JsonTokenType.StartArray)
                {
                    reader.Skip();
                    continue;
                }

                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                    {
                        var depth = reader.CurrentDepth;
                        while (reader.Read() && reader.CurrentDepth > depth)
                        {
                            if (reader.TokenType == JsonTokenType.String)
                            {
                                stringBytes += reader.ValueSpan.Length;
                            }
                        }
                    }
                    else if (reader.TokenType == JsonTokenType.String)
                    {
                        stringBytes += reader.ValueSpan.Length;
                    }

                    count++;
                }
            }
        }
        catch (JsonException)
        {
            // Malformed from here on: what was counted stands, and the binder names the error.
        }

        return count;
    }

    // Compared as the binder compares names (ordinal, ignoring case), through a string when the name is escaped or
    // not ASCII, where a byte comparison could differ from it.
    private static bool IsLogs(ref Utf8JsonReader reader) =>
        reader.ValueIsEscaped || !Ascii.IsValid(reader.ValueSpan)
            ? string.Equals(reader.GetString(), "logs", StringComparison.OrdinalIgnoreCase)
            : Ascii.EqualsIgnoreCase(reader.ValueSpan, "logs"u8);
}
