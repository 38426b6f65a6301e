namespace Tracker.Data.Entities;

/// <summary>
/// Requests per client per whole UTC hour of the logs' event time. Ingest adds to it in the same transaction
/// that writes the logs, and analytics read only these rows, so their cost depends on the window asked for,
/// never on how many logs exist.
/// </summary>
public sealed class HourlyUsage
{
    public Guid ClientId { get; set; }

    /// <summary>Start of the UTC hour (minutes, seconds and fractions are zero).</summary>
    public DateTimeOffset HourStart { get; set; }

    public long RequestCount { get; set; }
}
