namespace Tracker.ApiService.Usage;

/// <summary>
/// How many marks the next transaction of one <see cref="HourlyTotalsFold"/> run takes. Ingest waits for every fold
/// transaction, and what one costs depends on the cells behind its marks: in a scratch cluster a thousand
/// client-hours of 20 cells each took 30 ms to fold, of 200 cells 163–167 ms. So each run starts at
/// <see cref="Start"/> marks and sizes every later transaction by the last one's fold statement: as many marks as
/// would have taken <see cref="Target"/> at its cost per mark, at most twice or half the last size, between
/// <see cref="Min"/> and <see cref="Max"/>.
/// </summary>
/// <remarks>
/// The fold statement alone is timed: the lock's wait and the commit's flush cost the same for few marks as for
/// many, so counting them would shrink transactions without making them shorter. A transaction of fewer than
/// <see cref="Min"/> marks is not counted (a checkpoint's stall would make a few marks look dear), and one that found
/// fewer marks than it asked for may shrink the size but not grow it.
/// </remarks>
internal sealed class FoldTransactionSize
{
    public const int Start = 100;

    public const int Min = 10;

    public const int Max = 1000;

    /// <summary>How long a fold statement should take, which ingest waits for.</summary>
    public static readonly TimeSpan Target = TimeSpan.FromMilliseconds(20);

    /// <summary>Marks to take next.</summary>
    public int Marks { get; private set; } = Start;

    /// <summary>Adapts to a fold statement that folded <paramref name="folded"/> marks in <paramref name="took"/>.</summary>
    public void Observe(int folded, TimeSpan took)
    {
        if (folded < Min)
        {
            return;
        }

        var perMark = took.TotalMilliseconds / folded;
        var fitting = perMark > 0 ? Target.TotalMilliseconds / perMark : Max;
        if (folded < Marks)
        {
            fitting = Math.Min(fitting, Marks);
        }

        Marks = (int)Math.Clamp(fitting, Math.Max(Min, Marks / 2), Math.Min(Max, Marks * 2));
    }
}
