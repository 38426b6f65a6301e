namespace Tracker.Data;

/// <summary>
/// A mergeable latency histogram (DDSketch's logarithmic buckets): a duration x &gt; 0 falls in bucket
/// i = ⌈log_γ x⌉, which covers (γ^(i−1), γ^i], and a bucket stands for 2γ^i / (γ + 1), within
/// <see cref="RelativeAccuracy"/> of every duration in it; 0 has a bucket of its own. Counts are exact, so the
/// value at any rank is found in the right bucket and a quantile is within 1% of the exact one, however many
/// sketches were merged. Stored in <c>usage_hourly_details.latency</c> as a <c>bigint[]</c> of packed buckets
/// (<see cref="Pack"/>), in any order and possibly repeating a bucket: merging is concatenating, and the database
/// compacts a long array by summing its repeats (<see cref="CompactFunction"/>).
/// </summary>
public sealed class LatencySketch
{
    /// <summary>A quantile's estimate is within this fraction of the exact value at its rank.</summary>
    public const double RelativeAccuracy = 0.01;

    /// <summary>Bits of a packed element that hold the count; the bucket's key is above them.</summary>
    public const int CountBits = 40;

    /// <summary>The SQL function that sums a packed array's repeated buckets (created by the Analytics migration).</summary>
    public const string CompactFunction = "latency_sketch_compact";

    /// <summary>The SQL aggregate that concatenates packed arrays (created by the Analytics migration).</summary>
    public const string ConcatAggregate = "latency_sketch_concat";

    /// <summary>
    /// Durations below this many milliseconds (1 µs) count as 0. Without a floor the buckets would run down to the
    /// smallest double (tens of thousands of them, each a stored element a tenant could make the writer rewrite);
    /// with it, 0 to 3,600,000 ms spans about 1,100 buckets.
    /// </summary>
    public const double ResolutionMs = 0.001;

    /// <summary>A stored array longer than this is compacted when the rollup row is updated.</summary>
    public const int CompactAbove = 192;

    // Keys are bucket indexes shifted to be positive: the smallest positive double has index about −37,230.
    private const int KeyOffset = 40_000;
    private const long CountMask = (1L << CountBits) - 1;
    private static readonly double Gamma = (1 + RelativeAccuracy) / (1 - RelativeAccuracy);
    private static readonly double LogGamma = Math.Log(Gamma);

    private readonly Dictionary<int, long> _counts = [];

    // The keys in order, sorted by the first quantile asked after a change: an answer asks three of each sketch.
    private int[]? _orderedKeys;

    /// <summary>Durations recorded (logs that carried one).</summary>
    public long Count { get; private set; }

    /// <summary>Records one duration (milliseconds, not negative; below <see cref="ResolutionMs"/> it counts as 0).</summary>
    public void Add(double durationMs)
    {
        // A comparison, not ThrowIfNegative: that one refuses −0, which JSON's "-0" is and validation lets through.
        if (durationMs < 0 || double.IsNaN(durationMs))
        {
            throw new ArgumentOutOfRangeException(nameof(durationMs), durationMs, "A duration cannot be negative.");
        }

        var key = durationMs < ResolutionMs ? 0 : (int)Math.Ceiling(Math.Log(durationMs) / LogGamma) + KeyOffset;
        _counts[key] = _counts.GetValueOrDefault(key) + 1;
        Count++;
        _orderedKeys = null;
    }

    /// <summary>Adds the buckets of a stored (packed) sketch.</summary>
    public void Merge(long[] packed)
    {
        ArgumentNullException.ThrowIfNull(packed);
        foreach (var element in packed)
        {
            var key = (int)(element >>> CountBits);
            var count = element & CountMask;
            _counts[key] = _counts.GetValueOrDefault(key) + count;
            Count += count;
        }

        _orderedKeys = null;
    }

    /// <summary>The sketch as stored: one element per bucket, in key order.</summary>
    public long[] Pack()
    {
        var packed = new long[_counts.Count];
        var at = 0;
        foreach (var (key, count) in _counts)
        {
            packed[at++] = ((long)key << CountBits) | count;
        }

        Array.Sort(packed);
        return packed;
    }

    /// <summary>
    /// The estimate of the value at rank ⌊q·(n−1)⌋ of the sorted durations (0-based, the lower nearest rank), within
    /// <see cref="RelativeAccuracy"/> of it; null when no duration was recorded.
    /// </summary>
    public double? Quantile(double q)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(q);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(q, 1);
        if (Count == 0)
        {
            return null;
        }

        var rank = (long)Math.Floor(q * (Count - 1));
        long seen = 0;
        if (_orderedKeys is not { } orderedKeys)
        {
            // Sorted before it is kept, so that reading quantiles stays free of races, as it was.
            orderedKeys = [.. _counts.Keys];
            Array.Sort(orderedKeys);
            _orderedKeys = orderedKeys;
        }

        foreach (var key in orderedKeys)
        {
            seen += _counts[key];
            if (seen > rank)
            {
                return ValueOf(key);
            }
        }

        throw new InvalidOperationException("The counts do not add up to the sketch's count.");
    }

    private static double ValueOf(int key) =>
        key == 0 ? 0 : 2 * Math.Pow(Gamma, key - KeyOffset) / (Gamma + 1);
}
