namespace Tracker.ApiService.Ingest;

/// <summary>One recorded call to the provider's API.</summary>
/// <param name="IpAddress">The caller's IPv4 (dotted decimals without leading zeros) or IPv6 address.</param>
/// <param name="Endpoint">The path that was called, 1–2048 characters (code points), without U+0000; stored exactly as sent.</param>
/// <param name="Method">The HTTP method (a token of at most 16 characters; stored upper-case).</param>
/// <param name="Timestamp">When the call happened, Unix epoch milliseconds: within the retention window and at most 5 minutes ahead.</param>
public sealed record LogRequest(string? IpAddress, string? Endpoint, string? Method, long? Timestamp);

/// <param name="Logs">1 to 1000 logs (configurable); all are stored or none.</param>
public sealed record LogBatchRequest(LogRequest[]? Logs);

/// <param name="Accepted">How many logs were stored.</param>
public sealed record BatchAccepted(int Accepted);
