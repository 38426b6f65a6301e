namespace Tracker.ApiService.Usage;

/// <summary>
/// The buckets of a usage series: the last <c>days</c> calendar days of a time zone including today, cut into its
/// days (from local midnight to local midnight, so 23 or 25 hours across a DST change) or into hours. The rollups
/// are per UTC hour, so every boundary must fall on a whole UTC hour: a zone whose offset is not whole hours in the
/// window (Asia/Kolkata, +05:30) cannot be answered exactly and is refused.
/// </summary>
public sealed class SeriesWindow
{
    private SeriesWindow(TimeZoneInfo timeZone, SeriesGranularity granularity, DateTimeOffset[] boundaries)
    {
        TimeZone = timeZone;
        Granularity = granularity;
        Boundaries = boundaries;
    }

    public TimeZoneInfo TimeZone { get; }

    public SeriesGranularity Granularity { get; }

    /// <summary>Bucket i is [Boundaries[i], Boundaries[i + 1]), in UTC; whole hours, ascending.</summary>
    public DateTimeOffset[] Boundaries { get; }

    public int BucketCount => Boundaries.Length - 1;

    public DateTimeOffset Start => Boundaries[0];

    public DateTimeOffset End => Boundaries[^1];

    /// <summary>The window for <paramref name="now"/>; null when a boundary is not a whole UTC hour.</summary>
    public static SeriesWindow? Create(TimeZoneInfo timeZone, SeriesGranularity granularity, int days, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(timeZone);
        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(now, timeZone).DateTime);
        var midnights = new DateTimeOffset[days + 1];
        for (var index = 0; index <= days; index++)
        {
            midnights[index] = StartOfDay(timeZone, today.AddDays(index + 1 - days));
            if (midnights[index].Ticks % TimeSpan.TicksPerHour != 0)
            {
                return null;
            }
        }

        if (granularity == SeriesGranularity.Day)
        {
            return new SeriesWindow(timeZone, granularity, midnights);
        }

        var hours = (int)((midnights[^1] - midnights[0]).Ticks / TimeSpan.TicksPerHour);
        return new SeriesWindow(timeZone, granularity, [.. Enumerable.Range(0, hours + 1).Select(hour => midnights[0].AddHours(hour))]);
    }

    /// <summary>The bucket holding the UTC hour starting at <paramref name="hourStart"/>; -1 outside the window.</summary>
    public int BucketOf(DateTimeOffset hourStart)
    {
        var index = Array.BinarySearch(Boundaries, hourStart);
        var bucket = index >= 0 ? index : ~index - 1;
        return bucket >= 0 && bucket < BucketCount ? bucket : -1;
    }

    /// <summary>The start of bucket <paramref name="bucket"/> as the zone's clock showed it (its offset then).</summary>
    public DateTimeOffset LocalStart(int bucket) => TimeZoneInfo.ConvertTime(Boundaries[bucket], TimeZone);

    /// <summary>The first instant of <paramref name="day"/> in the zone: its midnight, the earlier one if midnight came
    /// twice, or the end of the gap if the clocks skipped it.</summary>
    private static DateTimeOffset StartOfDay(TimeZoneInfo timeZone, DateOnly day)
    {
        var midnight = day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Unspecified);
        while (timeZone.IsInvalidTime(midnight))
        {
            midnight = midnight.AddMinutes(15);
        }

        var offset = timeZone.IsAmbiguousTime(midnight) ? timeZone.GetAmbiguousTimeOffsets(midnight).Max() : timeZone.GetUtcOffset(midnight);
        return new DateTimeOffset(midnight, offset).ToUniversalTime();
    }
}
