using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Tracker.ApiService.Ingest;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;

namespace Tracker.Tests.Ingest;

/// <summary>The ingest telemetry the README lists is produced for a commit: three instruments and a span.</summary>
[Collection(nameof(RealServers))]
public sealed class IngestTelemetryTests(ServersFixture servers) : ApiTest(servers), IDisposable
{
    // The activity source is static, shared by every API instance in this process: a batch of this odd size marks ours.
    private const int BatchLogs = 37;

    private readonly ConcurrentQueue<Activity> _spans = new();
    private ActivityListener? _listener;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == IngestMetrics.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _spans.Enqueue,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public void Dispose() => _listener?.Dispose();

    [Fact]
    public async Task A_commit_records_its_batch_size_duration_and_committed_logs_and_an_ingest_batch_span()
    {
        var client = await Http.RegisterNewAsync();
        using var metrics = new MetricRecorder(Factory,
            "tracker.ingest.batch.size", "tracker.ingest.commit.duration", "tracker.ingest.logs.committed");

        using (var response = await Http.PostBatchAsync(client.ApiKey, Enumerable.Range(0, BatchLogs).Select(_ => Log())))
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        // Recorded by the writer around the answer: wait for all three rather than race it.
        foreach (var instrument in new[] { "tracker.ingest.batch.size", "tracker.ingest.commit.duration", "tracker.ingest.logs.committed" })
        {
            await Poll.UntilAsync(() => Task.FromResult(metrics.Of(instrument).Any()), TimeSpan.FromSeconds(10));
        }

        await Poll.UntilAsync(() => Task.FromResult(_spans.Any(IsOurs)), TimeSpan.FromSeconds(10));
        Assert.Equal(BatchLogs, Assert.Single(metrics.Of("tracker.ingest.batch.size")).Value);
        Assert.Equal(BatchLogs, metrics.Of("tracker.ingest.logs.committed").Sum(measurement => measurement.Value));
        Assert.InRange(Assert.Single(metrics.Of("tracker.ingest.commit.duration")).Value, double.Epsilon, 10);
        var span = Assert.Single(_spans, IsOurs);
        Assert.Equal("ingest batch", span.OperationName);
        Assert.Equal(1, (int)span.GetTagItem("tracker.ingest.requests")!);
    }

    private static bool IsOurs(Activity span) => span.GetTagItem("tracker.ingest.logs") is BatchLogs;
}
