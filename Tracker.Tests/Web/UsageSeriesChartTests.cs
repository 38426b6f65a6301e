using System.Globalization;
using Bunit;
using Tracker.Web.Api;
using Tracker.Web.Components.Usage;

namespace Tracker.Tests.Web;

/// <summary>
/// The series chart rendered on its own (bUnit): what it draws from an answer of the API. The browser test covers the
/// page around it against a real API.
/// </summary>
public sealed class UsageSeriesChartTests : IDisposable
{
    private readonly BunitContext _context = new();

    [Fact]
    public void A_series_with_exactly_as_many_groups_as_drawn_says_nothing_is_left_out()
    {
        var chart = Render(Endpoints(8), limit: 8);

        Assert.Equal(8, chart.FindAll("#series-legend li").Count);
        Assert.Empty(chart.FindAll(".chart.series .hint"));
    }

    [Fact]
    public void A_series_with_more_groups_than_drawn_draws_the_busiest_and_says_the_others_are_left_out()
    {
        var chart = Render(Endpoints(9), limit: 8);

        var legend = chart.FindAll("#series-legend li").Select(item => item.GetAttribute("data-group")).ToList();
        Assert.Equal(Enumerable.Range(0, 8).Select(Endpoint), legend);
        Assert.Equal("Only the 8 busiest are drawn; the others are left out.", chart.Find(".chart.series .hint").TextContent);
        Assert.Equal(8, chart.FindAll("#series-numbers thead th[scope=col]").Count - 1);
        // The total is of what is drawn: the ninth group's requests are not in it.
        var drawn = Enumerable.Range(0, 8).Sum(index => Requests(index));
        Assert.StartsWith($"{drawn.ToString("N0", CultureInfo.InvariantCulture)} requests today", chart.Find("#series-total").TextContent, StringComparison.Ordinal);
    }

    public void Dispose() => _context.Dispose();

    private IRenderedComponent<UsageSeriesChart> Render(UsageSeries series, int limit) =>
        _context.Render<UsageSeriesChart>(parameters => parameters
            .Add(chart => chart.Series, series)
            .Add(chart => chart.When, "today")
            .Add(chart => chart.Limit, limit));

    // Busiest first, as the API answers: group i has fewer requests than group i - 1.
    private static UsageSeries Endpoints(int count)
    {
        var start = new DateTimeOffset(2026, 11, 30, 0, 0, 0, TimeSpan.Zero);
        var lines = Enumerable.Range(0, count)
            .Select(index => new SeriesLine(Endpoint(index), Requests(index), [new SeriesPoint(start, 24, Requests(index))]))
            .ToList();
        return new UsageSeries("day", "UTC", "endpoint", lines);
    }

    private static string Endpoint(int index) => $"GET /v1/resource-{index}";

    private static long Requests(int index) => 1_000 - index * 10;
}
