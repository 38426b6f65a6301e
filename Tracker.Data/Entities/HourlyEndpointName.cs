namespace Tracker.Data.Entities;

/// <summary>
/// The distinct endpoints a client's <see cref="HourlyUsageDetail"/> rows of one hour hold: what ingest counts to
/// cap them (see the API docs), without reading every cell of the hour.
/// </summary>
public sealed class HourlyEndpointName
{
    public Guid ClientId { get; set; }

    public DateTimeOffset HourStart { get; set; }

    public required string Endpoint { get; set; }
}
