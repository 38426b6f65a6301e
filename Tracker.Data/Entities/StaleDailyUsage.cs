namespace Tracker.Data.Entities;

/// <summary>
/// A client's UTC day whose hourly cells may have changed since it was compacted: ingest marks every past day it
/// adds a cell to, in the same transaction. Reads answer a marked day from the hourly cells; the compaction folds the
/// day again and removes the mark.
/// </summary>
public sealed class StaleDailyUsage
{
    public Guid ClientId { get; set; }

    public DateOnly Day { get; set; }
}
