namespace Tracker.Web.Components.Usage;

/// <summary>
/// Where a usage bar chart draws: a 720 × 240 drawing (it scales to the page), a count scale on the left from 0 to a
/// round maximum, and one slot per bucket for its bar.
/// </summary>
public sealed class BarChartLayout(int buckets, long largest)
{
    public const double Width = 720;
    public const double Height = 240;
    public const double Left = 48;
    public const double Top = 12;
    public const double Bottom = Height - 28;

    public int Buckets { get; } = buckets;

    /// <summary>The top of the scale: 1, 2 or 5 times a power of ten, at least the largest bar (and 2), for round labels.</summary>
    public long ScaleMax { get; } = NiceCeiling(largest);

    public double BarWidth => Slot - Gap;

    private double Slot => (Width - Left) / Math.Max(Buckets, 1);

    private double Gap => Slot > 6 ? Slot * 0.2 : 1;

    public double BarX(int bucket) => Left + bucket * Slot + Gap / 2;

    public double CentreX(int bucket) => Left + bucket * Slot + Slot / 2;

    public double Y(double count) => Bottom - (Bottom - Top) * count / ScaleMax;

    /// <summary>About eight buckets get a label whatever their number, always the first and the last.</summary>
    public bool IsLabelled(int bucket) =>
        bucket == 0 || bucket == Buckets - 1 || (bucket % Math.Max(Buckets / 7, 1) == 0 && Buckets - 1 - bucket > Buckets / 14);

    private static long NiceCeiling(long max)
    {
        long step = 1;
        while (true)
        {
            foreach (var factor in new long[] { 1, 2, 5 })
            {
                if (step * factor >= max && step * factor >= 2)
                {
                    return step * factor;
                }
            }

            step *= 10;
        }
    }
}
