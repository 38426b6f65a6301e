using Tracker.ApiService.Usage;

namespace Tracker.Tests.Usage;

/// <summary>How a series cuts days and hours in a time zone: local midnights, DST days of 23 and 25 hours.</summary>
public sealed class SeriesWindowTests
{
    private static readonly TimeZoneInfo Berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");

    [Fact]
    public void Days_run_from_local_midnight_to_local_midnight_with_23_and_25_hours_across_dst()
    {
        // Berlin: clocks go forward on 2026-03-29 and back on 2026-10-25.
        var spring = SeriesWindow.Create(Berlin, SeriesGranularity.Day, 3, new DateTimeOffset(2026, 3, 30, 12, 0, 0, TimeSpan.Zero))!;
        Assert.Equal(
            [new DateTimeOffset(2026, 3, 27, 23, 0, 0, TimeSpan.Zero), new DateTimeOffset(2026, 3, 28, 23, 0, 0, TimeSpan.Zero),
             new DateTimeOffset(2026, 3, 29, 22, 0, 0, TimeSpan.Zero), new DateTimeOffset(2026, 3, 30, 22, 0, 0, TimeSpan.Zero)],
            spring.Boundaries);
        Assert.Equal(new DateTimeOffset(2026, 3, 29, 0, 0, 0, TimeSpan.FromHours(1)), spring.LocalStart(1));
        Assert.Equal(23, (spring.Boundaries[2] - spring.Boundaries[1]).TotalHours);

        var autumn = SeriesWindow.Create(Berlin, SeriesGranularity.Day, 2, new DateTimeOffset(2026, 10, 26, 5, 0, 0, TimeSpan.Zero))!;
        Assert.Equal(25, (autumn.Boundaries[1] - autumn.Boundaries[0]).TotalHours);
        Assert.Equal(new DateTimeOffset(2026, 10, 25, 0, 0, 0, TimeSpan.FromHours(2)), autumn.LocalStart(0));
        Assert.Equal(new DateTimeOffset(2026, 10, 26, 0, 0, 0, TimeSpan.FromHours(1)), autumn.LocalStart(1));
    }

    [Fact]
    public void Hours_across_the_autumn_change_show_the_repeated_local_hour_with_both_offsets()
    {
        var window = SeriesWindow.Create(Berlin, SeriesGranularity.Hour, 1, new DateTimeOffset(2026, 10, 25, 12, 0, 0, TimeSpan.Zero))!;
        Assert.Equal(25, window.BucketCount);
        Assert.Equal(new DateTimeOffset(2026, 10, 25, 2, 0, 0, TimeSpan.FromHours(2)), window.LocalStart(2));
        Assert.Equal(new DateTimeOffset(2026, 10, 25, 2, 0, 0, TimeSpan.FromHours(1)), window.LocalStart(3));
    }

    [Fact]
    public void Today_is_the_zones_today_not_utcs()
    {
        // 23:30 UTC on 2026-12-01 is already 2026-12-02 in Berlin.
        var window = SeriesWindow.Create(Berlin, SeriesGranularity.Day, 1, new DateTimeOffset(2026, 12, 1, 23, 30, 0, TimeSpan.Zero))!;
        Assert.Equal(new DateTimeOffset(2026, 12, 2, 0, 0, 0, TimeSpan.FromHours(1)), window.LocalStart(0));
    }

    [Fact]
    public void A_bucket_is_found_for_every_hour_of_the_window_and_none_outside()
    {
        var window = SeriesWindow.Create(Berlin, SeriesGranularity.Day, 2, new DateTimeOffset(2026, 10, 26, 5, 0, 0, TimeSpan.Zero))!;
        Assert.Equal(-1, window.BucketOf(window.Start.AddHours(-1)));
        Assert.Equal(0, window.BucketOf(window.Start));
        Assert.Equal(0, window.BucketOf(window.Start.AddHours(24)));
        Assert.Equal(1, window.BucketOf(window.Start.AddHours(25)));
        Assert.Equal(-1, window.BucketOf(window.End));
    }

    [Fact]
    public void A_zone_whose_offset_is_not_whole_hours_cannot_be_cut_from_hourly_rollups()
    {
        var kolkata = TimeZoneInfo.FindSystemTimeZoneById("Asia/Kolkata");
        Assert.Null(SeriesWindow.Create(kolkata, SeriesGranularity.Day, 7, DateTimeOffset.UtcNow));
    }
}
