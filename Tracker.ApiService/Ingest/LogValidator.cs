using System.Net;
using System.Net.Sockets;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// Checks a log against the contract and turns it into a <see cref="LogRecord"/>. Hand-written because it
/// runs on the hottest path: no reflection, no allocation for a valid log beyond the record itself.
/// </summary>
public sealed class LogValidator(TimeProvider time, Microsoft.Extensions.Options.IOptions<RetentionOptions> retention)
{
    public const int EndpointMaxLength = Tracker.Data.LogTable.EndpointMaxLength;
    public const int MethodMaxLength = Tracker.Data.LogTable.MethodMaxLength;
    public const int LogIdMaxLength = Tracker.Data.LogTable.LogIdMaxLength;
    private static readonly TimeSpan MaxFutureSkew = TimeSpan.FromMinutes(5);

    /// <summary>Validates <paramref name="log"/>; errors go to <paramref name="errors"/> under <paramref name="prefix"/>.</summary>
    public bool TryConvert(LogRequest? log, Guid clientId, Guid apiKeyId, string prefix, Dictionary<string, string[]> errors, out LogRecord record)
    {
        record = default;
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

        if (string.IsNullOrEmpty(log.Endpoint) || log.Endpoint.Length > EndpointMaxLength)
        {
            errors[prefix + "endpoint"] = [$"endpoint is required: 1 to {EndpointMaxLength} characters."];
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

        if (valid)
        {
            record = new LogRecord(clientId, apiKeyId, occurredAt, ipAddress!, log.Method!.ToUpperInvariant(), log.Endpoint!, log.Id);
        }

        return valid;
    }

    /// <summary>
    /// Strict: IPAddress.TryParse alone also accepts "1" or "0x7f.1" (legacy inet_aton forms), which no client
    /// means as an address; IPv4 must be four dotted decimals.
    /// </summary>
    public static IPAddress? ParseIpAddress(string? text)
    {
        if (string.IsNullOrEmpty(text) || text.Length > 45 || !IPAddress.TryParse(text, out var address))
        {
            return null;
        }

        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            return text.Contains('%', StringComparison.Ordinal) ? null : address;
        }

        var span = text.AsSpan();
        var parts = 0;
        foreach (var range in span.Split('.'))
        {
            var part = span[range];
            if (part.Length is 0 or > 3 || part.ContainsAnyExceptInRange('0', '9'))
            {
                return null;
            }

            parts++;
        }

        return parts == 4 ? address : null;
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
