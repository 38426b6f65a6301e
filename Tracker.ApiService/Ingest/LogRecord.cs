using System.Net;

namespace Tracker.ApiService.Ingest;

/// <summary>One validated activity log, ready for COPY.</summary>
/// <param name="Id">The client's own id for the log, if it gave one: a retry of it is a duplicate, not a new log.</param>
/// <param name="StatusCode">The call's HTTP status code (100–599), if given.</param>
/// <param name="DurationMs">The call's own latency in milliseconds (0–3,600,000), if given.</param>
public readonly record struct LogRecord(
    Guid ClientId, Guid ApiKeyId, DateTimeOffset OccurredAt, IPAddress IpAddress, string Method, string Endpoint, string? Id = null,
    short? StatusCode = null, double? DurationMs = null);
