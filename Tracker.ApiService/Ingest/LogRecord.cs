using System.Net;

namespace Tracker.ApiService.Ingest;

/// <summary>One validated activity log, ready for COPY.</summary>
public readonly record struct LogRecord(
    Guid ClientId, Guid ApiKeyId, DateTimeOffset OccurredAt, IPAddress IpAddress, string Method, string Endpoint);
