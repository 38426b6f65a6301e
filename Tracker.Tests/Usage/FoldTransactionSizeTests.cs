using Tracker.ApiService.Usage;

namespace Tracker.Tests.Usage;

/// <summary>The fold's transactions follow what the last one cost, so ingest never waits long for one.</summary>
public sealed class FoldTransactionSizeTests
{
    private static readonly TimeSpan Slow = FoldTransactionSize.Target * 3;
    private static readonly TimeSpan Quick = FoldTransactionSize.Target / 4;

    [Fact]
    public void A_slow_transaction_halves_the_next_down_to_the_minimum()
    {
        var size = new FoldTransactionSize();
        var sizes = new List<int>();
        for (var step = 0; step < 6; step++)
        {
            size.Observe(size.Marks, Slow);
            sizes.Add(size.Marks);
        }

        Assert.Equal([50, 25, 12, FoldTransactionSize.Min, FoldTransactionSize.Min, FoldTransactionSize.Min], sizes);
    }

    [Fact]
    public void Quick_full_transactions_double_the_next_up_to_the_maximum()
    {
        var size = new FoldTransactionSize();
        var sizes = new List<int>();
        for (var step = 0; step < 6; step++)
        {
            size.Observe(size.Marks, Quick);
            sizes.Add(size.Marks);
        }

        Assert.Equal([200, 400, 800, FoldTransactionSize.Max, FoldTransactionSize.Max, FoldTransactionSize.Max], sizes);
    }

    [Fact]
    public void A_transaction_that_found_fewer_marks_or_took_near_the_target_leaves_the_size_alone()
    {
        var size = new FoldTransactionSize();
        size.Observe(size.Marks - 1, Quick);
        Assert.Equal(100, size.Marks);
        size.Observe(size.Marks, FoldTransactionSize.Target * 0.75);
        Assert.Equal(100, size.Marks);
    }
}
