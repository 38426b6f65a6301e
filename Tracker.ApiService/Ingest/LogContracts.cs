namespace Tracker.ApiService.Ingest;

/// <summary>One recorded call to the provider's API.</summary>
/// <param name="IpAddress">The caller's IPv4 (dotted decimals without leading zeros) or IPv6 address.</param>
/// <param name="Endpoint">The path that was called, 1–2048 characters (code points), without U+0000; stored exactly as sent.</param>
/// <param name="Method">The HTTP method (a token of at most 16 characters; stored upper-case).</param>
/// <param name="Timestamp">When the call happened, Unix epoch milliseconds: within the retention window and at most 5 minutes ahead.</param>
/// <param name="Id">Optional: the caller's own id for this log, 1–64 visible ASCII characters (a UUID, say). A log whose
/// client, id and timestamp match a stored one is a duplicate: it is not stored or counted again, so a retry is safe.</param>
/// <param name="StatusCode">Optional: the HTTP status code the call was answered with, an integer from 100 to 599.</param>
/// <param name="DurationMs">Optional: how long the call took, in milliseconds, from 0 to 3,600,000 (fractions allowed).</param>
public sealed record LogRequest(
    string? IpAddress, string? Endpoint, string? Method, long? Timestamp, string? Id = null, int? StatusCode = null, double? DurationMs = null);

/// <param name="Logs">1 to 1000 logs (configurable); all are stored or none.</param>
public sealed record LogBatchRequest(LogRequest[]? Logs);

/// <param name="Accepted">How many logs the batch held; all of them are now stored, once.</param>
/// <param name="Stored">How many were stored by this request (null when answered 202, before the commit).</param>
/// <param name="Duplicates">How many were already stored (a log with the same id and timestamp, from an earlier
/// request or earlier in this batch), so were not stored or counted again (null when answered 202).</param>
public sealed record BatchAccepted(int Accepted, int? Stored, int? Duplicates);
