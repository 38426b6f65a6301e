namespace Tracker.Data.Entities;

/// <summary>
/// Requests per client per whole UTC hour broken down by endpoint, method, status class and API key, with a latency
/// sketch: one row is one cell. Ingest adds to it in the transaction that writes the logs (as to
/// <see cref="HourlyUsage"/>), and the endpoint, series and key analytics read only these rows.
/// </summary>
public sealed class HourlyUsageDetail
{
    /// <summary>The longest endpoint a cell keeps; a longer normalised endpoint is counted under <see cref="OtherEndpoint"/>.</summary>
    public const int EndpointMaxLength = 256;

    /// <summary>The cell of the endpoints past the per-hour cap, and of those too long to keep.</summary>
    public const string OtherEndpoint = "{other}";

    public Guid ClientId { get; set; }

    /// <summary>Start of the UTC hour (minutes, seconds and fractions are zero).</summary>
    public DateTimeOffset HourStart { get; set; }

    /// <summary>The normalised endpoint: id-like path segments as <c>{id}</c>, no query (see the API docs).</summary>
    public required string Endpoint { get; set; }

    /// <summary>A standard HTTP method, or <c>OTHER</c>.</summary>
    public required string Method { get; set; }

    /// <summary>1 to 5 for 1xx to 5xx; 0 for logs without a status code.</summary>
    public short StatusClass { get; set; }

    public Guid ApiKeyId { get; set; }

    public long RequestCount { get; set; }

    /// <summary>The durations of the cell's logs that carried one, as a packed <see cref="LatencySketch"/>.</summary>
    public required long[] Latency { get; set; }
}
