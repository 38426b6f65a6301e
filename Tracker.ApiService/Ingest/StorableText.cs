namespace Tracker.ApiService.Ingest;

/// <summary>
/// Whether PostgreSQL stores a string in a <c>varchar(n)</c> column of a UTF-8 database exactly as it is: it refuses
/// U+0000 and cannot encode an unpaired surrogate, and it counts n in characters (code points), where
/// <see cref="string.Length"/> counts UTF-16 units (two for a character outside the BMP, such as an emoji).
/// </summary>
public static class StorableText
{
    /// <summary>True when <paramref name="text"/> has no NUL, no unpaired surrogate and at most <paramref name="maxCharacters"/> code points.</summary>
    public static bool Fits(string text, int maxCharacters)
    {
        ArgumentNullException.ThrowIfNull(text);
        // More than 2n UTF-16 units are more than n code points, whatever they are.
        if (text.Length > 2 * maxCharacters)
        {
            return false;
        }

        // Almost every text has neither a NUL nor a surrogate: then its length is its count of characters, found by
        // two vectorized searches instead of a look at each unit (a maximum-size batch holds a megabyte of endpoints).
        var span = text.AsSpan();
        if (!span.ContainsAnyInRange('\uD800', '\uDFFF') && !span.Contains('\0'))
        {
            return text.Length <= maxCharacters;
        }

        var characters = 0;
        for (var index = 0; index < text.Length; index++)
        {
            var unit = text[index];
            if (unit == '\0')
            {
                return false;
            }

            if (char.IsHighSurrogate(unit))
            {
                if (index + 1 == text.Length || !char.IsLowSurrogate(text[index + 1]))
                {
                    return false;
                }

                index++;
            }
            else if (char.IsLowSurrogate(unit))
            {
                return false;
            }

            characters++;
        }

        return characters <= maxCharacters;
    }
}
