using Tracker.ApiService.Usage;

namespace Tracker.Tests.Usage;

/// <summary>Each fold transaction takes as many marks as the last one's cost per mark fits in the target.</summary>
public sealed class FoldTransactionSizeTests
{
    private static TimeSpan Ms(double milliseconds) => TimeSpan.FromMilliseconds(milliseconds);

    [Theory]
    [InlineData(40, 50)] // 0.4 ms a mark: 50 fit in 20 ms
    [InlineData(16, 125)] // 0.16 ms a mark: 125
    [InlineData(200, 50)] // 2 ms a mark would fit 10, but a step at most halves
    [InlineData(2, 200)] // 0.02 ms a mark would fit 1,000, but a step at most doubles
    [InlineData(0, 200)]
    public void A_full_transaction_sizes_the_next_by_its_cost_per_mark_within_half_and_double(double took, int next)
    {
        var size = new FoldTransactionSize();
        size.Observe(FoldTransactionSize.Start, Ms(took));
        Assert.Equal(next, size.Marks);
    }

    [Fact]
    public void Cheap_marks_grow_the_size_to_the_maximum_and_dear_ones_shrink_it_to_the_minimum()
    {
        var size = new FoldTransactionSize();
        var sizes = new List<int>();
        for (var step = 0; step < 5; step++)
        {
            size.Observe(size.Marks, Ms(size.Marks * 0.001));
            sizes.Add(size.Marks);
        }

        for (var step = 0; step < 8; step++)
        {
            size.Observe(size.Marks, Ms(size.Marks * 10.0));
            sizes.Add(size.Marks);
        }

        Assert.Equal([200, 400, 800, 1000, 1000, 500, 250, 125, 62, 31, 15, 10, 10], sizes);
    }

    [Fact]
    public void A_transaction_that_found_fewer_marks_may_shrink_the_size_but_not_grow_it()
    {
        var size = new FoldTransactionSize();
        size.Observe(50, Ms(1));
        Assert.Equal(FoldTransactionSize.Start, size.Marks);
        size.Observe(50, Ms(40));
        Assert.Equal(50, size.Marks);
    }

    [Fact]
    public void A_few_marks_slowed_by_something_else_do_not_count()
    {
        var size = new FoldTransactionSize();
        size.Observe(FoldTransactionSize.Min - 1, TimeSpan.FromSeconds(1));
        Assert.Equal(FoldTransactionSize.Start, size.Marks);
    }
}
