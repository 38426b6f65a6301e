using System.Buffers;
using Tracker.Data.Entities;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// Which cell of the detailed hourly rollups (<c>usage_hourly_details</c>) a log counts in. The logs keep what was
/// sent; the rollups keep a bounded number of cells, so that raw paths with ids (<c>/users/123</c>) or invented
/// methods cannot multiply them. The rule, documented in docs/api.md:
/// <list type="bullet">
/// <item>the endpoint loses its query (<c>?</c> onwards) and fragment (<c>#</c> onwards);</item>
/// <item>an id-like path segment becomes <c>{id}</c>: all decimal digits, a UUID (with or without hyphens), 16 or
/// more hex digits, or 20 or more letters, digits, <c>-</c> and <c>_</c> with at least one digit (ULIDs, base64 ids);</item>
/// <item>a result longer than <see cref="HourlyUsageDetail.EndpointMaxLength"/> characters counts as
/// <see cref="HourlyUsageDetail.OtherEndpoint"/>, as do the endpoints past the per-hour cap (applied in SQL);</item>
/// <item>a method other than the nine of RFC 9110 and PATCH counts as <c>OTHER</c>;</item>
/// <item>the status class is the status code's hundreds (1 to 5), 0 without a status code.</item>
/// </list>
/// </summary>
public static class RollupDimensions
{
    /// <summary>Distinct endpoints one client's cells of one UTC hour hold, at most; later ones count as "{other}".</summary>
    public const int MaxEndpointsPerHour = 100;

    public const string OtherMethod = "OTHER";

    private const string IdSegment = "{id}";
    private static readonly SearchValues<char> Hex = SearchValues.Create("0123456789abcdefABCDEF");
    private static readonly SearchValues<char> IdCharacters =
        SearchValues.Create("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_");

    /// <summary>The endpoint as its rollup cell names it (the same string when nothing changes).</summary>
    public static string Endpoint(string endpoint)
    {
        Span<char> buffer = stackalloc char[HourlyUsageDetail.EndpointMaxLength];
        return AsString(Endpoint(endpoint, buffer), endpoint);
    }

    /// <summary>
    /// A name <see cref="Endpoint(ReadOnlySpan{char}, Span{char})"/> gave for <paramref name="endpoint"/>, as a string:
    /// the caller's own when normalising changed nothing, so that most logs allocate no name.
    /// </summary>
    public static string AsString(ReadOnlySpan<char> name, string endpoint) =>
        name.Length == endpoint.Length && name.Overlaps(endpoint) ? endpoint : name.ToString();

    /// <summary>
    /// The endpoint as its rollup cell names it, without allocating: a slice of <paramref name="endpoint"/> when no
    /// segment is id-like, else written to <paramref name="buffer"/> (at least
    /// <see cref="HourlyUsageDetail.EndpointMaxLength"/> characters), or <see cref="HourlyUsageDetail.OtherEndpoint"/>.
    /// </summary>
    public static ReadOnlySpan<char> Endpoint(ReadOnlySpan<char> endpoint, Span<char> buffer)
    {
        var path = endpoint;
        var end = path.IndexOfAny('?', '#');
        if (end >= 0)
        {
            path = path[..end];
        }

        // Written as it is read, and given up as soon as it outgrows a cell: a maximum-size batch may hold a thousand
        // endpoints of 2,000 characters each.
        const int MaxLength = HourlyUsageDetail.EndpointMaxLength;
        var written = 0;
        var read = 0;
        foreach (var range in path.Split('/'))
        {
            if (IsIdLike(path[range]))
            {
                var kept = path[read..range.Start.Value];
                if (written + kept.Length + IdSegment.Length > MaxLength)
                {
                    return HourlyUsageDetail.OtherEndpoint;
                }

                kept.CopyTo(buffer[written..]);
                IdSegment.CopyTo(buffer[(written + kept.Length)..]);
                written += kept.Length + IdSegment.Length;
                read = range.End.Value;
            }
        }

        var rest = path[read..];
        if (written + rest.Length is 0 or > MaxLength)
        {
            return HourlyUsageDetail.OtherEndpoint;
        }

        if (read == 0)
        {
            return path;
        }

        rest.CopyTo(buffer[written..]);
        return buffer[..(written + rest.Length)];
    }

    /// <summary>The method as its rollup cell names it: a standard one, or <see cref="OtherMethod"/>.</summary>
    public static string Method(string method) => method switch
    {
        "GET" or "HEAD" or "POST" or "PUT" or "DELETE" or "CONNECT" or "OPTIONS" or "TRACE" or "PATCH" => method,
        _ => OtherMethod,
    };

    /// <summary>1 to 5 for 1xx to 5xx; 0 for a log without a status code.</summary>
    public static short StatusClass(short? statusCode) => (short)(statusCode / 100 ?? 0);

    private static bool IsIdLike(ReadOnlySpan<char> segment)
    {
        if (segment.IsEmpty)
        {
            return false;
        }

        if (!segment.ContainsAnyExceptInRange('0', '9'))
        {
            return true;
        }

        if (IsUuid(segment) || (segment.Length >= 16 && !segment.ContainsAnyExcept(Hex)))
        {
            return true;
        }

        return segment.Length >= 20 && !segment.ContainsAnyExcept(IdCharacters) && segment.ContainsAnyInRange('0', '9');
    }

    private static bool IsUuid(ReadOnlySpan<char> segment) => segment.Length == 36 && Guid.TryParseExact(segment, "D", out _);
}
