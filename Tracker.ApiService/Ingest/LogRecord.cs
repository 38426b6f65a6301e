using System.Net;

namespace Tracker.ApiService.Ingest;

/// <summary>One validated activity log, ready for COPY.</summary>
/// <param name="Id">The client's own id for the log, if it gave one: a retry of it is a duplicate, not a new log.</param>
/// <param name="StatusCode">The call's HTTP status code (100–599), if given.</param>
/// <param name="DurationMs">The call's own latency in milliseconds (0–3,600,000), if given.</param>
/// <remarks>
/// A class, not a struct: a request's logs are an array of references (8 KB for 1,000 logs) that dies young with
/// them. As a struct of 104 bytes, a maximum-size batch's array (104 KB) was allocated on the large object heap,
/// which only a gen2 collection frees; until then each dead array kept its batch's endpoint strings alive through
/// every gen0 and gen1 collection. Under a flood of such batches that was about 30 MB of dead logs promoted at each
/// gen0 collection and the API's peak memory grew by about 100 MB (docs/performance.md, issue 20). An array of
/// references reaches the large object heap at 10,622 elements, so an <c>Ingest:MaxLogsPerBatchRequest</c> set above
/// about 10,000 brings that back.
/// </remarks>
public sealed record LogRecord(
    Guid ClientId, Guid ApiKeyId, DateTimeOffset OccurredAt, IPAddress IpAddress, string Method, string Endpoint, string? Id = null,
    short? StatusCode = null, double? DurationMs = null);
