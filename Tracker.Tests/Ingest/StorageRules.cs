using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Tracker.Tests.Ingest;

/// <summary>
/// The README's rules for how a log is stored, written independently of the validator: what PostgreSQL accepts
/// in a varchar(n), and what "stored as sent" means for each field.
/// </summary>
internal static class StorageRules
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Whether PostgreSQL stores <paramref name="text"/> in a varchar(<paramref name="maxCharacters"/>) column.</summary>
    public static bool PostgresAccepts(string text, int maxCharacters)
    {
        if (text.Contains('\0', StringComparison.Ordinal))
        {
            return false;
        }

        try
        {
            StrictUtf8.GetByteCount(text);
        }
        catch (EncoderFallbackException)
        {
            return false;
        }

        return text.EnumerateRunes().Count() <= maxCharacters;
    }

    /// <summary>A dotted-quad part of 0–255 without a leading zero, or a dotted tail made of four of them.</summary>
    public static bool HasUnambiguousDottedParts(string address)
    {
        var tail = address[(address.LastIndexOf(':') + 1)..];
        if (!tail.Contains('.', StringComparison.Ordinal))
        {
            return true;
        }

        var parts = tail.Split('.');
        return parts.Length == 4 && parts.All(part =>
            part.Length is >= 1 and <= 3 && part.All(char.IsAsciiDigit) && (part.Length == 1 || part[0] != '0') && int.Parse(part, System.Globalization.CultureInfo.InvariantCulture) <= 255);
    }

    /// <summary>IPv4 exactly as written; IPv6 as the same address (canonical text), from hex digits, colons and an IPv4 tail only.</summary>
    public static void AssertAddressStoredAsSent(string sent, IPAddress stored)
    {
        Assert.True(HasUnambiguousDottedParts(sent), $"'{sent}' has a dotted part that is read differently by different parsers");
        if (stored.AddressFamily == AddressFamily.InterNetwork)
        {
            Assert.Equal(sent, stored.ToString());
        }
        else
        {
            Assert.True(sent.All(character => char.IsAsciiHexDigit(character) || character is ':' or '.'), $"'{sent}' is not plain IPv6 text");
            Assert.Equal(IPAddress.Parse(sent), stored);
        }
    }
}
