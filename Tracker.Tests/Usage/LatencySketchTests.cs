using Tracker.Data;

namespace Tracker.Tests.Usage;

/// <summary>The latency sketch's promise: a quantile within 1% of the exact value at its rank, however it was merged.</summary>
public sealed class LatencySketchTests
{
    private static readonly double[] Quantiles = [0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Every_quantile_is_within_one_percent_of_the_exact_value_at_its_rank(int seed)
    {
        var random = new Random(seed);
        var durations = Enumerable.Range(0, 1 + random.Next(5_000)).Select(_ => Duration(random)).ToArray();
        var sketch = new LatencySketch();
        foreach (var duration in durations)
        {
            sketch.Add(duration);
        }

        AssertQuantiles(durations, sketch);
    }

    [Fact]
    public void Merging_packed_sketches_in_pieces_and_repeats_answers_as_one_sketch_of_everything()
    {
        var random = new Random(7);
        var durations = Enumerable.Range(0, 3_000).Select(_ => Duration(random)).ToArray();
        var merged = new LatencySketch();
        foreach (var piece in durations.Chunk(137))
        {
            var part = new LatencySketch();
            foreach (var duration in piece)
            {
                part.Add(duration);
            }

            // The database may hold a bucket more than once (concatenated arrays): split each count in two.
            var packed = part.Pack();
            var halves = packed.SelectMany(element =>
            {
                var count = element & ((1L << LatencySketch.CountBits) - 1);
                var key = element - count;
                return count > 1 ? new[] { key | (count / 2), key | (count - count / 2) } : [element];
            }).ToArray();
            merged.Merge(halves);
        }

        Assert.Equal(durations.Length, merged.Count);
        AssertQuantiles(durations, merged);
    }

    [Fact]
    public void Zero_has_a_bucket_of_its_own_and_the_extremes_of_the_range_keep_their_accuracy()
    {
        double[] durations = [0, 0, 0.001, 1, 3_600_000];
        var sketch = new LatencySketch();
        foreach (var duration in durations)
        {
            sketch.Add(duration);
        }

        Assert.Equal(0, sketch.Quantile(0));
        Assert.Equal(0, sketch.Quantile(0.2));
        AssertQuantiles(durations, sketch);
    }

    [Fact]
    public void Durations_below_a_microsecond_negative_zero_included_count_as_zero_in_one_bucket()
    {
        var sketch = new LatencySketch();
        foreach (var duration in (double[])[-0.0, double.Epsilon, 1e-320, 0.000_1, 0.000_999])
        {
            sketch.Add(duration);
        }

        Assert.Single(sketch.Pack());
        Assert.Equal(0, sketch.Quantile(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => sketch.Add(-0.000_1));
    }

    [Fact]
    public void A_quantile_asked_again_after_more_durations_or_a_merge_counts_them()
    {
        var sketch = new LatencySketch();
        sketch.Add(10);
        sketch.Add(20);
        Assert.Equal(20, sketch.Quantile(1)!.Value, 20 * LatencySketch.RelativeAccuracy);

        // Buckets new to the sketch, below and above the ones it had when it was last asked.
        sketch.Add(5_000);
        Assert.Equal(5_000, sketch.Quantile(1)!.Value, 5_000 * LatencySketch.RelativeAccuracy);

        var faster = new LatencySketch();
        faster.Add(1);
        faster.Add(1);
        faster.Add(1);
        sketch.Merge(faster.Pack());
        Assert.Equal(1, sketch.Quantile(0)!.Value, LatencySketch.RelativeAccuracy);
        Assert.Equal(1, sketch.Quantile(0.5)!.Value, LatencySketch.RelativeAccuracy);
    }

    [Fact]
    public void A_sketch_without_durations_has_no_quantiles()
    {
        var sketch = new LatencySketch();
        sketch.Merge([]);
        Assert.Null(sketch.Quantile(0.5));
        Assert.Empty(sketch.Pack());
    }

    [Fact]
    public void A_sketch_packs_one_element_per_bucket_in_key_order()
    {
        var sketch = new LatencySketch();
        foreach (var duration in new[] { 5.0, 5.0, 0, 100, 5.01 })
        {
            sketch.Add(duration);
        }

        var packed = sketch.Pack();
        Assert.Equal(3, packed.Length);
        Assert.Equal(packed.Order(), packed);
        Assert.Equal([1L, 3, 1], packed.Select(element => element & ((1L << LatencySketch.CountBits) - 1)));
    }

    /// <summary>The exact value at rank ⌊q·(n−1)⌋ of the sorted durations, as the sketch defines its quantiles.</summary>
    internal static double ExactQuantile(IReadOnlyList<double> sorted, double q) => sorted[(int)Math.Floor(q * (sorted.Count - 1))];

    internal static void AssertWithinAccuracy(double exact, double? estimate, string what)
    {
        Assert.True(estimate is { } value && Math.Abs(value - exact) <= exact * LatencySketch.RelativeAccuracy + 1e-9,
            $"{what}: exact {exact}, estimate {estimate}");
    }

    private static void AssertQuantiles(double[] durations, LatencySketch sketch)
    {
        var sorted = durations.Order().ToArray();
        foreach (var q in Quantiles)
        {
            AssertWithinAccuracy(ExactQuantile(sorted, q), sketch.Quantile(q), $"q={q}");
        }
    }

    // Spread over the whole accepted range, with ties, zeros and fractions.
    private static double Duration(Random random) => random.Next(10) switch
    {
        0 => 0,
        1 => random.Next(1, 50),
        2 => random.NextDouble() * 3_600_000,
        _ => Math.Exp(random.NextDouble() * 16 - 4),
    };
}
