using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Tracker.ApiService.Ingest;

/// <summary>Ingest telemetry (meter and activity source "Tracker.Ingest"), shown in the Aspire dashboard.</summary>
public sealed class IngestMetrics
{
    public const string Name = "Tracker.Ingest";

    public static readonly ActivitySource ActivitySource = new(Name);

    private readonly Histogram<int> _batchSize;
    private readonly Histogram<double> _commitDuration;
    private readonly Counter<long> _committed;
    private readonly Counter<long> _rejected;

    private readonly Meter _meter;

    public IngestMetrics(IMeterFactory meterFactory)
    {
        var meter = _meter = meterFactory.Create(Name);
        _batchSize = meter.CreateHistogram<int>("tracker.ingest.batch.size", "{log}", "Logs per committed batch.",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000] });
        _commitDuration = meter.CreateHistogram<double>("tracker.ingest.commit.duration", "s", "Time to write and commit one batch.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });
        _committed = meter.CreateCounter<long>("tracker.ingest.logs.committed", "{log}", "Logs committed to PostgreSQL.");
        _rejected = meter.CreateCounter<long>("tracker.ingest.logs.rejected", "{log}", "Logs not stored, by reason.");
    }

    /// <summary>Publishes the queue depth; called once by the writer that owns the queue.</summary>
    public void ObserveQueueDepth(Func<long> queuedLogs) =>
        _meter.CreateObservableGauge("tracker.ingest.queue.depth", queuedLogs, "{log}", "Logs waiting for a writer: queued, or reserved by a request about to queue them.");

    public void Committed(int logs, TimeSpan duration)
    {
        _batchSize.Record(logs);
        _commitDuration.Record(duration.TotalSeconds);
        _committed.Add(logs);
    }

    /// <summary>Reasons: invalid, rate_limited, queue_full, client_share_full, shutting_down, timeout, refused, unknown.</summary>
    public void Rejected(int logs, string reason)
    {
        if (logs > 0)
        {
            _rejected.Add(logs, new KeyValuePair<string, object?>("reason", reason));
        }
    }
}
