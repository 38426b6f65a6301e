namespace Tracker.Data.Entities;

/// <summary>
/// A client's UTC day whose hourly cells may have changed since it was compacted: ingest marks every past day it
/// adds a cell to, in the same transaction. Reads answer a marked day from the hourly cells; the compaction folds the
/// day again and removes the mark, unless it was marked again meanwhile.
/// </summary>
public sealed class StaleDailyUsage
{
    public Guid ClientId { get; set; }

    public DateOnly Day { get; set; }

    /// <summary>
    /// Counts the transactions that marked the day: the compaction removes a mark only if it is still the version it
    /// read before folding, so a mark renewed by a transaction whose cells the fold did not see stays.
    /// </summary>
    public long Version { get; set; }
}
