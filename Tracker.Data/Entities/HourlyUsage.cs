namespace Tracker.Data.Entities;

/// <summary>
/// Requests per client per whole UTC hour of the logs' event time, the sum of the hour's detailed cells
/// (<see cref="HourlyUsageDetail"/>) as of the last fold: an hour ingest added cells to since is marked
/// (<see cref="HourlyUsageMark"/>), and reads take its total from the cells until the fold writes it here. Analytics
/// read only rollups, so their cost depends on the window asked for, never on how many logs exist.
/// </summary>
public sealed class HourlyUsage
{
    public Guid ClientId { get; set; }

    /// <summary>Start of the UTC hour (minutes, seconds and fractions are zero).</summary>
    public DateTimeOffset HourStart { get; set; }

    public long RequestCount { get; set; }
}
