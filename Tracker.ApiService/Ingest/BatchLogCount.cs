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
    public static int Count(ReadOnlySpan<byte> json)
    {
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
                    reader.Skip();
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

    private static bool IsLogs(ref Utf8JsonReader reader) =>
        reader.ValueIsEscaped
            ? string.Equals(reader.GetString(), "logs", StringComparison.OrdinalIgnoreCase)
            : Ascii.EqualsIgnoreCase(reader.ValueSpan, "logs"u8);
}
