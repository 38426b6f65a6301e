using System.Text.Json;
using System.Text.RegularExpressions;

namespace Tracker.ApiService.Http;

/// <summary>
/// Turns a <see cref="JsonException"/> into words for the client. System.Text.Json's own messages name .NET
/// types ("could not be converted to System.Int64"), which is both unhelpful to a REST client and a leak of
/// internals, so they are never passed through; only the JSON path and line position are.
/// </summary>
public static partial class JsonErrorDescriber
{
    /// <summary>The error as a field path (camelCase, <c>logs[3].ipAddress</c>) and a message; the path is empty
    /// when the error is about the body as a whole.</summary>
    public static (string Field, string Message) Describe(JsonException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var field = ToFieldPath(exception.Path);

        var unknownProperty = UnmappedMemberPattern().Match(exception.Message);
        if (unknownProperty.Success)
        {
            var name = unknownProperty.Groups["name"].Value;
            // Depending on where the reader stopped, the path may or may not already end with the name.
            var property = field.Length == 0 ? name
                : field == name || field.EndsWith("." + name, StringComparison.Ordinal) ? field
                : $"{field}.{name}";
            return (property, $"'{name}' is not a known property. Remove it or check its spelling.");
        }

        if (exception.Message.Contains("could not be converted", StringComparison.Ordinal))
        {
            return field.Length == 0
                ? (string.Empty, "The request body must be a JSON object.")
                : (field, "The value has the wrong JSON type for this field.");
        }

        if (exception.Message.Contains("Duplicate", StringComparison.OrdinalIgnoreCase))
        {
            return (field, "The property appears more than once.");
        }

        var position = exception.LineNumber is { } line
            ? $" (line {line + 1}, byte {exception.BytePositionInLine.GetValueOrDefault() + 1})"
            : string.Empty;
        return (field, $"The request body is not valid JSON{position}.");
    }

    /// <summary><c>$.logs[3].ipAddress</c> → <c>logs[3].ipAddress</c>; <c>$</c> → empty.</summary>
    public static string ToFieldPath(string? jsonPath)
    {
        if (string.IsNullOrEmpty(jsonPath) || jsonPath == "$")
        {
            return string.Empty;
        }

        var path = jsonPath.StartsWith("$.", StringComparison.Ordinal) ? jsonPath[2..]
            : jsonPath.StartsWith('$') ? jsonPath[1..]
            : jsonPath;
        // Names that need quoting appear as ['odd name']; show them plainly.
        return QuotedNamePattern().Replace(path, match => "." + match.Groups["name"].Value).TrimStart('.');
    }

    [GeneratedRegex("The JSON property '(?<name>[^']*)' could not be mapped", RegexOptions.CultureInvariant)]
    private static partial Regex UnmappedMemberPattern();

    [GeneratedRegex(@"\['(?<name>[^']*)'\]", RegexOptions.CultureInvariant)]
    private static partial Regex QuotedNamePattern();
}
