using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// Checks a log against the contract and turns it into a <see cref="LogRecord"/>. Hand-written because it
/// runs on the hottest path: no reflection, no allocation for a valid log beyond the record itself.
/// What it accepts is stored as sent (see the README's Ingest section): a value .NET would read differently from
/// how PostgreSQL or a person reads it, or that PostgreSQL would refuse, is a 400 here, never a rewrite or a 422.
/// </summary>
public sealed class LogValidator(TimeProvider time, Microsoft.Extensions.Options.IOptions<RetentionOptions> retention)
{
    public const int EndpointMaxLength = Tracker.Data.LogTable.EndpointMaxLength;
    public const int MethodMaxLength = Tracker.Data.LogTable.MethodMaxLength;
    public const int LogIdMaxLength = Tracker.Data.LogTable.LogIdMaxLength;
    public const double DurationMaxMs = 3_600_000;
    private static readonly TimeSpan MaxFutureSkew = TimeSpan.FromMinutes(5);

    /// <summary>Validates <paramref name="log"/>; errors go to <paramref name="errors"/> under <paramref name="prefix"/>.</summary>
    public bool TryConvert(LogRequest? log, Guid clientId, Guid apiKeyId, string prefix, Dictionary<string, string[]> errors,
        [NotNullWhen(true)] out LogRecord? record)
    {
        record = null;
        if (log is null)
        {
            errors[prefix.TrimEnd('.')] = ["A log object is required."];
            return false;
        }

        var valid = true;
        var ipAddress = ParseIpAddress(log.IpAddress);
        if (ipAddress is null)
        {
            errors[prefix + "ipAddress"] = ["ipAddress must be an IPv4 (203.0.113.7) or IPv6 (2001:db8::1) address."];
            valid = false;
        }

        if (string.IsNullOrEmpty(log.Endpoint) || !StorableText.Fits(log.Endpoint, EndpointMaxLength))
        {
            errors[prefix + "endpoint"] = [$"endpoint is required: 1 to {EndpointMaxLength} characters, without U+0000 or unpaired surrogates."];
            valid = false;
        }

        if (!IsMethodToken(log.Method))
        {
            errors[prefix + "method"] = [$"method must be an HTTP method token (letters, digits and !#$%&'*+-.^_`|~) of at most {MethodMaxLength} characters, like GET."];
            valid = false;
        }

        var now = time.GetUtcNow();
        var oldest = now.AddDays(-retention.Value.Days);
        DateTimeOffset occurredAt = default;
        if (log.Timestamp is not { } milliseconds
            || milliseconds < oldest.ToUnixTimeMilliseconds()
            || milliseconds > (now + MaxFutureSkew).ToUnixTimeMilliseconds())
        {
            errors[prefix + "timestamp"] =
            [
                $"timestamp must be Unix epoch milliseconds (an integer) from {oldest.ToUnixTimeMilliseconds()} "
                + $"({retention.Value.Days} days ago) to {(now + MaxFutureSkew).ToUnixTimeMilliseconds()} (5 minutes from now).",
            ];
            valid = false;
        }
        else
        {
            occurredAt = DateTimeOffset.FromUnixTimeMilliseconds(milliseconds);
        }

        if (log.Id is not null && !IsLogId(log.Id))
        {
            errors[prefix + "id"] = [$"id must be 1 to {LogIdMaxLength} visible ASCII characters (! to ~, no spaces), like a UUID."];
            valid = false;
        }

        if (log.StatusCode is < 100 or > 599)
        {
            errors[prefix + "statusCode"] = ["statusCode must be an integer HTTP status code from 100 to 599."];
            valid = false;
        }

        // JSON cannot carry NaN or infinities (named literals are refused), so a range check is the whole rule.
        if (log.DurationMs is < 0 or > DurationMaxMs)
        {
            errors[prefix + "durationMs"] = ["durationMs must be a number of milliseconds from 0 to 3600000 (fractions allowed)."];
            valid = false;
        }

        if (valid)
        {
            // "-0" is a valid JSON number and passes the range check: stored and summed as 0.
            record = new LogRecord(clientId, apiKeyId, occurredAt, ipAddress!, log.Method!.ToUpperInvariant(), log.Endpoint!, log.Id,
                (short?)log.StatusCode, log.DurationMs is 0 ? 0 : log.DurationMs);
        }

        return valid;
    }

    /// <summary>
    /// Strict: IPAddress.TryParse alone also accepts "1" or "0x7f.1" (legacy inet_aton forms), which no client
    /// means as an address, and reads a dotted part with a leading zero as octal ("010" is 8) where PostgreSQL and
    /// people read decimal. So IPv4, also as the tail of an IPv6 address, must be four dotted decimals without
    /// leading zeros; IPv6 is hex digits and colons only (no brackets, port or zone, which are not the address).
    /// </summary>
    public static IPAddress? ParseIpAddress(string? text)
    {
        if (string.IsNullOrEmpty(text) || text.Length > 45)
        {
            return null;
        }

        var span = text.AsSpan();
        var lastColon = span.LastIndexOf(':');
        if (lastColon >= 0 && span[..lastColon].ContainsAnyExcept(Ipv6HexAndColons))
        {
            return null;
        }

        var tail = span[(lastColon + 1)..];
        var tailValid = lastColon < 0 || tail.Contains('.') ? IsDottedQuad(tail) : !tail.ContainsAnyExcept(Ipv6HexAndColons);
        if (!tailValid)
        {
            return null;
        }

        if (!IPAddress.TryParse(span, out var address))
        {
            return null;
        }

        var family = lastColon >= 0 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;
        return address.AddressFamily == family ? address : null;
    }

    private static readonly System.Buffers.SearchValues<char> Ipv6HexAndColons =
        System.Buffers.SearchValues.Create("0123456789abcdefABCDEF:");

    private static bool IsDottedQuad(ReadOnlySpan<char> text)
    {
        var parts = 0;
        foreach (var range in text.Split('.'))
        {
            var part = text[range];
            if (part.Length is 0 or > 3 || part.ContainsAnyExceptInRange('0', '9') || (part.Length > 1 && part[0] == '0'))
            {
                return false;
            }

            parts++;
        }

        return parts == 4;
    }

    private static bool IsLogId(string id) =>
        id.Length is > 0 and <= LogIdMaxLength && !id.AsSpan().ContainsAnyExceptInRange('!', '~');

    private static bool IsMethodToken(string? method)
    {
        if (string.IsNullOrEmpty(method) || method.Length > MethodMaxLength)
        {
            return false;
        }

        foreach (var character in method)
        {
            if (!(char.IsAsciiLetterOrDigit(character) || "!#$%&'*+-.^_`|~".Contains(character, StringComparison.Ordinal)))
            {
                return false;
            }
        }

        return true;
    }
}
