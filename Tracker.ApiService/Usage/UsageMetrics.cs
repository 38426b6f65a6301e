using System.Diagnostics.Metrics;

namespace Tracker.ApiService.Usage;

/// <summary>Usage analytics telemetry (meter "Tracker.Usage"); cache hits and misses per tier are in "Tracker.Caching".</summary>
public sealed class UsageMetrics
{
    public const string Name = "Tracker.Usage";

    private readonly Histogram<double> _queryDuration;
    private readonly Counter<long> _published;

    public UsageMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(Name);
        _queryDuration = meter.CreateHistogram<double>("tracker.usage.query.duration", "s", "Time of one analytics query in PostgreSQL, by query.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] });
        _published = meter.CreateCounter<long>("tracker.usage.changes.published", "{client}",
            "Clients whose usage changed, as published to Redis for every instance's caches.");
    }

    /// <summary>
    /// Queries: daily, top, endpoints, series, key_daily. A breakdown that merged latency sketches says who merged
    /// them (<c>sketches</c>: <c>api</c>, or <c>database</c> for the groups whose cells hold too many elements).
    /// </summary>
    public void Queried(string query, TimeSpan duration, bool? sketchesMergedByApi = null)
    {
        var queryTag = new KeyValuePair<string, object?>("query", query);
        if (sketchesMergedByApi is { } byApi)
        {
            _queryDuration.Record(duration.TotalSeconds, queryTag, new KeyValuePair<string, object?>("sketches", byApi ? "api" : "database"));
        }
        else
        {
            _queryDuration.Record(duration.TotalSeconds, queryTag);
        }
    }

    public void Published(int clients) => _published.Add(clients);
}
