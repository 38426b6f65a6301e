namespace Tracker.Data.Entities;

/// <summary>
/// A client's UTC hour whose total in <c>usage_hourly</c> may be behind its detailed cells: ingest marks every hour it
/// adds cells to, in the same transaction, instead of adding to the total (a mark already there costs a lookup and no
/// write). Reads take a marked hour's total from its cells (the view <see cref="TotalsView"/>); a fold in the
/// background writes the totals of the marked hours and removes their marks, in one transaction.
/// </summary>
public sealed class HourlyUsageMark
{
    /// <summary>
    /// Every hour's exact total, once summed by hour (or day, or client): <c>usage_hourly</c>'s row for every hour,
    /// and for an hour with a mark a second row, its detailed cells' sum less that total.
    /// </summary>
    public const string TotalsView = "usage_hourly_totals";

    public Guid ClientId { get; set; }

    public DateTimeOffset HourStart { get; set; }

    /// <summary>
    /// When the mark was made (the start of the transaction that made it, by the database's clock). A batch that finds
    /// the hour marked leaves it as it is, so it tells how long the hour has been read from its cells; the fold takes
    /// the current hour's marks by it.
    /// </summary>
    public DateTimeOffset MarkedAt { get; set; }
}
