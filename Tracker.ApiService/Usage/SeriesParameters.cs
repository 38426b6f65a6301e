namespace Tracker.ApiService.Usage;

/// <summary>Bucket sizes of a usage series (<c>granularity</c>).</summary>
public enum SeriesGranularity
{
    Hour,
    Day,
}

/// <summary>What a usage series draws one line for (<c>groupBy</c>); <see cref="None"/> draws the total.</summary>
public enum SeriesGrouping
{
    None,
    Endpoint,
    Status,
    Key,
}
