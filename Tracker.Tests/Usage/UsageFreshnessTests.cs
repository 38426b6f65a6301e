using System.Diagnostics;
using System.Net;
using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.UsageClient;

namespace Tracker.Tests.Usage;

/// <summary>
/// Cached answers stay fresh on every instance (two APIs sharing PostgreSQL and Redis) without turning reads into
/// cache misses under steady ingest, and concurrent misses share one query.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class UsageFreshnessTests(ServersFixture servers, ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Freshness = TimeSpan.FromSeconds(2);

    // The product's own bound plus room for a noisy 2-core machine; an answer that is not refreshed at all stays
    // stale for its local lifetime (30 s), far beyond it. The 2 s figure itself is for the benchmark to measure.
    private static readonly TimeSpan FreshnessWithSlack = Freshness + TimeSpan.FromSeconds(3);

    private TrackerApiFactory _writer = null!;
    private TrackerApiFactory _reader = null!;
    private HttpClient _writerHttp = null!;
    private HttpClient _readerHttp = null!;

    public async Task InitializeAsync()
    {
        await AvoidDayBoundaryAsync();
        _writer = await TrackerApiFactory.CreateAsync(servers);
        _reader = _writer.CreateSibling();
        _writerHttp = _writer.CreateClient();
        _readerHttp = _reader.CreateClient();
    }

    public async Task DisposeAsync()
    {
        _writerHttp.Dispose();
        _readerHttp.Dispose();
        await _reader.DisposeAsync();
        await _writer.DisposeAsync();
    }

    [Fact]
    public async Task A_call_acknowledged_on_one_instance_shows_on_another_within_two_seconds()
    {
        var client = await _writerHttp.RegisterNewAsync();
        var token = await _readerHttp.LoginTokenAsync(client);
        for (var round = 1; round <= 3; round++)
        {
            // Both answers are cached on the reader before the call is made.
            Assert.Equal(round - 1, (await _readerHttp.DailyAsync(token, 1))[0].Count);
            await _readerHttp.TopAsync(token);

            using (var response = await _writerHttp.PostLogAsync(client.ApiKey, Log()))
            {
                Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            }

            var acknowledged = Stopwatch.StartNew();
            await Poll.UntilAsync(async () => (await _readerHttp.DailyAsync(token, 1))[0].Count == round, FreshnessWithSlack);
            var daily = acknowledged.Elapsed;
            await Poll.UntilAsync(
                async () => (await _readerHttp.TopAsync(token)).Where(busy => busy.ClientId == client.Id).Select(busy => busy.TotalRequests).FirstOrDefault() == round,
                FreshnessWithSlack);
            output.WriteLine($"round {round}: daily fresh after {daily.TotalMilliseconds:F0} ms, top after {acknowledged.Elapsed.TotalMilliseconds:F0} ms");
            Assert.True(acknowledged.Elapsed <= FreshnessWithSlack, $"Fresh only after {acknowledged.Elapsed.TotalMilliseconds:F0} ms");
        }
    }

    [Fact]
    public async Task Under_steady_ingest_reads_come_from_memory_and_stay_fresh()
    {
        var client = await _writerHttp.RegisterNewAsync();
        var token = await _readerHttp.LoginTokenAsync(client);
        using var metrics = new MetricRecorder(_reader, "tracker.cache.lookups");
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        var acknowledged = 0;
        var senders = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var response = await _writerHttp.PostLogAsync(client.ApiKey, Log());
                Assert.Equal(HttpStatusCode.Created, response.StatusCode);
                Interlocked.Increment(ref acknowledged);
            }
        })).ToArray();

        var reads = 0;
        var watch = Stopwatch.StartNew();
        while (!stop.IsCancellationRequested)
        {
            await _readerHttp.DailyAsync(token, 1);
            reads++;
        }

        await Task.WhenAll(senders);
        var elapsed = watch.Elapsed;
        var byTier = metrics.Of("tracker.cache.lookups", ("cache", "usage-daily"))
            .GroupBy(measurement => measurement.Tags["tier"]!).ToDictionary(group => group.Key, group => group.Count());
        var queries = byTier.GetValueOrDefault("database");
        output.WriteLine($"{acknowledged} calls acknowledged, {reads} reads in {elapsed.TotalSeconds:F1} s: "
            + string.Join(", ", byTier.Select(tier => $"{tier.Key} {tier.Value}")));

        // One change is published every half second (Freshness / 4); a new generation costs each instance one query.
        Assert.InRange(queries, 1, (int)(elapsed / (Freshness / 4)) + 3);
        Assert.True(byTier.GetValueOrDefault("memory") >= reads * 0.8, "Most reads must be answered from memory.");

        // And the answer catches up with everything acknowledged.
        await Poll.UntilAsync(async () => (await _readerHttp.DailyAsync(token, 1))[0].Count == acknowledged, FreshnessWithSlack);
    }

    [Fact]
    public async Task Concurrent_misses_for_one_answer_cost_one_query()
    {
        var client = await _writerHttp.RegisterNewAsync();
        var token = await _readerHttp.LoginTokenAsync(client);
        using var metrics = new MetricRecorder(_reader, "tracker.usage.query.duration");

        var answers = await Task.WhenAll(Enumerable.Range(0, 64).Select(_ => _readerHttp.DailyAsync(token, 7)));

        Assert.All(answers, answer => Assert.Equal(7, answer.Count));
        Assert.Single(metrics.Of("tracker.usage.query.duration", ("query", "daily")));
    }
}
