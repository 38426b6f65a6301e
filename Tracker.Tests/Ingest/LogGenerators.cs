using System.Globalization;
using System.Net;
using System.Text;
using CsCheck;

namespace Tracker.Tests.Ingest;

/// <summary>A generated field value and whether the contract promises to accept it.</summary>
internal readonly record struct Generated<T>(T Value, bool Clean);

/// <summary>
/// Adversarial values for each log field: the forms a client means (clean) next to the ones that break storage or
/// are read differently by .NET, PostgreSQL and people — leading zeros, bracketed or zoned IPv6, NUL, lone
/// surrogates, astral characters at the length limit, odd methods, timestamps at and past the window's edges.
/// </summary>
internal static class LogGenerators
{
    public static readonly TimeSpan Retention = TimeSpan.FromDays(90);

    private const string TokenCharacters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~";

    private static readonly Gen<string> Ipv4 = Gen.Int[0, 255].Array[4].Select(parts => string.Join('.', parts));

    private static readonly Gen<string> Ipv4WithLeadingZero = Gen.Select(Gen.Int[0, 255].Array[4], Gen.Int[0, 3], Gen.Int[1, 2],
        (parts, index, zeros) => string.Join('.', parts.Select((part, at) =>
            at == index ? new string('0', zeros) + part.ToString(CultureInfo.InvariantCulture) : part.ToString(CultureInfo.InvariantCulture))));

    private static readonly Gen<IPAddress> Ipv6 = Gen.Frequency(
        (3, Gen.Byte.Array[16].Select(bytes => new IPAddress(bytes))),
        // Mostly zeros, so the :: compression and embedded IPv4 forms come up.
        (2, Gen.Select(Gen.Int[0, 7], Gen.UShort, (at, value) =>
        {
            var bytes = new byte[16];
            bytes[at * 2] = (byte)(value >> 8);
            bytes[at * 2 + 1] = (byte)value;
            return new IPAddress(bytes);
        })));

    public static readonly Gen<Generated<string?>> IpAddress = Gen.Frequency(
        (4, Ipv4.Select(text => new Generated<string?>(text, true))),
        (2, Ipv6.Select(address => new Generated<string?>(address.ToString(), true))),
        (1, Ipv6.Select(address => new Generated<string?>(address.ToString().ToUpperInvariant(), true))),
        (1, Ipv6.Select(address => new Generated<string?>(Expanded(address), true))),
        (1, Ipv4.Select(text => new Generated<string?>("::ffff:" + text, true))),
        (1, Ipv4.Select(text => new Generated<string?>("64:ff9b::" + text, true))),
        (3, Ipv4WithLeadingZero.Select(text => new Generated<string?>(text, false))),
        (2, Ipv4WithLeadingZero.Select(text => new Generated<string?>("::ffff:" + text, false))),
        (1, Ipv6.Select(address => new Generated<string?>($"[{address}]", false))),
        (1, Ipv6.Select(address => new Generated<string?>($"[{address}]:8080", false))),
        (1, Ipv6.Select(address => new Generated<string?>($"{address}%eth0", false))),
        (1, Ipv4.Select(text => new Generated<string?>($" {text}", false))),
        (1, Gen.OneOf("1", "127.1", "0x7f.0.0.1", "256.1.1.1", "1.2.3.4.5", "localhost", "", "1.2.3.", "::ffff:1.2.3", "1::2::3")
            .Select(text => new Generated<string?>(text, false))),
        (1, AnyString.Select(text => new Generated<string?>(text, false))),
        (1, Gen.Const(new Generated<string?>(null, false))));

    public static readonly Gen<Generated<string?>> Endpoint = Gen.Frequency(
        (4, Gen.Char[TokenCharacters + "/?=&%:@"].Array[0, 60].Select(characters => new string(characters)).Select(path => new Generated<string?>("/" + path, true))),
        (3, ValidUnicode(1, 40).Select(text => new Generated<string?>(text, true))),
        (1, Gen.OneOf("a", "\U0001F600", "\u0001").Select(unit =>
            new Generated<string?>(string.Concat(Enumerable.Repeat(unit, 2048)), true))),
        (1, Gen.OneOf("a", "\U0001F600").Select(unit =>
            new Generated<string?>(string.Concat(Enumerable.Repeat(unit, 2049)), false))),
        (2, Gen.Select(ValidUnicode(0, 20), Gen.OneOf("\0", "\uD800", "\uDFFF", "\uDC00\uD800"), ValidUnicode(0, 20),
            (before, bad, after) => new Generated<string?>(before + bad + after, false))),
        (2, AnyString.Select(text => new Generated<string?>(text, false))),
        (1, Gen.OneOf<string?>("", null).Select(text => new Generated<string?>(text, false))));

    public static readonly Gen<Generated<string?>> Method = Gen.Frequency(
        (4, Gen.OneOf("GET", "get", "Post", "PUT", "delete", "PATCH", "options", "HEAD").Select(method => new Generated<string?>(method, true))),
        (2, Gen.Char[TokenCharacters].Array[1, 16].Select(characters => new string(characters)).Select(method => new Generated<string?>(method, true))),
        (1, Gen.Char[TokenCharacters].Array[17, 24].Select(characters => new string(characters)).Select(method => new Generated<string?>(method, false))),
        (2, Gen.OneOf<string?>("", null, " GET", "GE T", "GÉT", "get\0", "ıtem", "G\u0130T", "GET\n").Select(method => new Generated<string?>(method, false))),
        (1, AnyString.Select(text => new Generated<string?>(text, false))));

    /// <summary>Timestamps relative to <paramref name="now"/>; clean ones lie well inside the window.</summary>
    public static Gen<Generated<long?>> Timestamp(Func<DateTimeOffset> now) => Gen.Frequency(
        (5, Gen.Long[1_000, (long)(Retention.TotalMilliseconds * 0.9)].Select(ago => new Generated<long?>(now().ToUnixTimeMilliseconds() - ago, true))),
        (1, Gen.Long[-60_000, 60_000].Select(offset => new Generated<long?>((now() - Retention).ToUnixTimeMilliseconds() + offset, false))),
        (1, Gen.Long[-60_000, 60_000].Select(offset => new Generated<long?>((now() + TimeSpan.FromMinutes(5)).ToUnixTimeMilliseconds() + offset, false))),
        (1, Gen.OneOf<long?>(long.MinValue, long.MaxValue, 0, -1, null, 253_402_300_800_000).Select(value => new Generated<long?>(value, false))),
        (1, Gen.Long.Select(value => new Generated<long?>(value, false))));

    /// <summary>Any UTF-16 sequence: NUL, control characters, lone and reversed surrogates included.</summary>
    private static Gen<string> AnyString => Gen.Char.Array[0, 30].Select(characters => new string(characters));

    /// <summary>Well-formed text of any scalar values but NUL, astral ones included.</summary>
    private static Gen<string> ValidUnicode(int minLength, int maxLength) =>
        Gen.Frequency((3, Gen.Int[1, 0xD7FF]), (1, Gen.Int[0xE000, 0x10FFFF]))
            .Array[minLength, maxLength]
            .Select(scalars => string.Concat(scalars.Select(char.ConvertFromUtf32)));

    /// <summary>All eight groups of four hex digits, no compression: the same address, written out.</summary>
    private static string Expanded(IPAddress address)
    {
        var bytes = address.GetAddressBytes();
        return string.Join(':', Enumerable.Range(0, 8).Select(group => ((bytes[group * 2] << 8) | bytes[group * 2 + 1]).ToString("x4", CultureInfo.InvariantCulture)));
    }

    /// <summary>A JSON string literal in ASCII, escaping everything else (lone surrogates included) as \uXXXX.</summary>
    public static string JsonString(string value)
    {
        var json = new StringBuilder("\"");
        foreach (var character in value)
        {
            _ = character switch
            {
                '"' => json.Append("\\\""),
                '\\' => json.Append("\\\\"),
                < ' ' or > '~' => json.Append(CultureInfo.InvariantCulture, $"\\u{(int)character:x4}"),
                _ => json.Append(character),
            };
        }

        return json.Append('"').ToString();
    }
}
