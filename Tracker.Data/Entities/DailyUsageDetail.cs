namespace Tracker.Data.Entities;

/// <summary>
/// The <see cref="HourlyUsageDetail"/> cells of one whole UTC day folded together: same dimensions, the day's count
/// and merged latency sketch. Written only by the daily compaction, never by ingest; a long window reads a day from
/// here when the day is compacted (<see cref="DailyUsageCompaction"/>) and has no <see cref="StaleDailyUsage"/> mark
/// for the client, and from the hourly cells otherwise.
/// </summary>
public sealed class DailyUsageDetail
{
    public Guid ClientId { get; set; }

    /// <summary>The UTC day.</summary>
    public DateOnly Day { get; set; }

    /// <summary>The endpoint as the hourly cells stored it (the per-hour cap already applied).</summary>
    public required string Endpoint { get; set; }

    public required string Method { get; set; }

    /// <summary>1 to 5 for 1xx to 5xx; 0 for logs without a status code.</summary>
    public short StatusClass { get; set; }

    public Guid ApiKeyId { get; set; }

    public long RequestCount { get; set; }

    /// <summary>The day's latency sketch, packed and compacted (each bucket once).</summary>
    public required long[] Latency { get; set; }
}
