namespace Tracker.ApiService.Usage;

/// <summary>The UTC day and hour the usage answers' windows end in.</summary>
internal static class UsageClock
{
    public static DateOnly Today(TimeProvider time) => DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime);

    /// <summary>The start of the current whole UTC hour.</summary>
    public static DateTime CurrentHour(TimeProvider time)
    {
        var now = time.GetUtcNow().UtcDateTime;
        return new DateTime(now.Year, now.Month, now.Day, now.Hour, 0, 0, DateTimeKind.Utc);
    }
}
