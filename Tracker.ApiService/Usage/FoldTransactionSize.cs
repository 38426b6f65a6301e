namespace Tracker.ApiService.Usage;

/// <summary>
/// How many marks the next transaction of <see cref="HourlyTotalsFold"/> takes. Ingest waits for every fold
/// transaction, and what one costs depends on the cells behind its marks: a thousand client-hours of 20 cells each
/// took 31 ms to fold on the benchmark machine, of 200 cells 163 ms. So the size follows what the last transaction
/// took: halved after one that held the lock longer than <see cref="Target"/>, doubled after a full one that took
/// less than half of it, between <see cref="Min"/> and <see cref="Max"/>.
/// </summary>
internal sealed class FoldTransactionSize
{
    public const int Min = 10;

    public const int Max = 1000;

    /// <summary>How long a fold transaction should hold ingest up, at most, once the size has adapted.</summary>
    public static readonly TimeSpan Target = TimeSpan.FromMilliseconds(20);

    /// <summary>Marks to take next. Starts small: the first transaction after a start may meet an hour's backlog.</summary>
    public int Marks { get; private set; } = 100;

    /// <summary>Adapts to a transaction that folded <paramref name="folded"/> marks holding the lock for <paramref name="held"/>.</summary>
    public void Observe(int folded, TimeSpan held)
    {
        if (held > Target)
        {
            Marks = Math.Max(Min, Marks / 2);
        }
        else if (folded >= Marks && held < Target / 2)
        {
            Marks = Math.Min(Max, Marks * 2);
        }
    }
}
