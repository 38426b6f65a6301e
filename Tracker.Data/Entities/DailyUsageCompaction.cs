namespace Tracker.Data.Entities;

/// <summary>
/// How far the daily compaction has come: one row, absent until the first day is compacted. Every UTC day up to
/// <see cref="CompactedThrough"/> has its <see cref="DailyUsageDetail"/> rows, except for the clients a
/// <see cref="StaleDailyUsage"/> mark names.
/// </summary>
public sealed class DailyUsageCompaction
{
    /// <summary>The only row's key.</summary>
    public const short SingleRow = 1;

    public short Id { get; set; } = SingleRow;

    public DateOnly CompactedThrough { get; set; }
}
