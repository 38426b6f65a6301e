using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Tracker.ApiService.Ingest;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;

namespace Tracker.Tests.Ingest;

/// <summary>What operators and the analytics capability see of ingest: partitions, telemetry, change notices.</summary>
[Collection(nameof(RealServers))]
public sealed class IngestOperationsTests(ServersFixture servers)
{
    [Fact]
    public async Task Maintenance_keeps_a_week_of_partitions_ahead_and_drops_those_past_retention()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?> { ["Retention:Days"] = "30" });
        using var http = factory.CreateClient();
        var cs = factory.DatabaseConnectionString;
        var today = DateTime.UtcNow.Date;
        await ExecuteAsync(cs, $"DROP TABLE logs_p{today.AddDays(7):yyyyMMdd}");

        await factory.Services.GetRequiredService<PartitionMaintenance>().RunOnceAsync(CancellationToken.None);

        Assert.Equal(1, await PartitionCountAsync(cs, today.AddDays(7)));
        Assert.Equal(1, await PartitionCountAsync(cs, today.AddDays(-30)));
        Assert.Equal(0, await PartitionCountAsync(cs, today.AddDays(-31)));
        Assert.Equal(0, await PartitionCountAsync(cs, today.AddDays(-90)));
    }

    [Fact]
    public async Task Maintenance_run_by_several_instances_at_once_drops_and_creates_each_partition_without_an_error()
    {
        await using var first = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?> { ["Retention:Days"] = "30" });
        await using var second = first.CreateSibling();
        using var firstHttp = first.CreateClient();
        using var secondHttp = second.CreateClient();
        var cs = first.DatabaseConnectionString;
        var today = DateTime.UtcNow.Date;

        // Expired partitions to drop and missing ones to create, for every instance at once (each instance runs
        // maintenance on its own timer; CI once saw PostgreSQL fail a drop racing another with "could not find tuple
        // for parent of relation").
        for (var round = 0; round < 3; round++)
        {
            await ExecuteAsync(cs, $"SELECT ensure_log_partitions('{today.AddDays(-60):yyyy-MM-dd}', '{today.AddDays(-40):yyyy-MM-dd}')");
            await ExecuteAsync(cs, $"DROP TABLE IF EXISTS logs_p{today.AddDays(7):yyyyMMdd}, logs_p{today.AddDays(6):yyyyMMdd}");
            var runs = new[] { first, second, first, second }
                .Select(instance => instance.Services.GetRequiredService<PartitionMaintenance>().RunOnceAsync(CancellationToken.None));
            await Task.WhenAll(runs);

            Assert.Equal(1, await PartitionCountAsync(cs, today.AddDays(7)));
            Assert.Equal(0, await PartitionCountAsync(cs, today.AddDays(-50)));
        }
    }

    [Fact]
    public async Task Maintenance_waiting_for_a_lock_never_holds_up_ingest()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?> { ["Retention:Days"] = "30" });
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        var cs = factory.DatabaseConnectionString;
        var today = DateTime.UtcNow.Date;
        await ExecuteAsync(cs, $"DROP TABLE logs_p{today.AddDays(7):yyyyMMdd}");

        // A long report reading the logs holds a lock that partition DDL must wait for. A DDL statement waiting for
        // its lock queues every later writer behind it, so maintenance must give up and retry, never wait.
        await using var report = new Npgsql.NpgsqlConnection(cs);
        await report.OpenAsync();
        await using var reading = await report.BeginTransactionAsync();
        await using (var read = new Npgsql.NpgsqlCommand("SELECT count(*) FROM logs", report, reading))
        {
            await read.ExecuteScalarAsync();
        }

        // The report holds its lock while requests are sent for reportHeld. A maintenance run that waited for the lock
        // would queue every insert behind its DDL until the report ends, which is after the loop: each request would be
        // held to its commit deadline (5 s) and answered 503. One that gives up after its short lock_timeout holds a
        // request for that timeout at most. Half of reportHeld tells the two apart with a margin no scheduling hiccup
        // on a busy machine reaches.
        var reportHeld = TimeSpan.FromSeconds(6);
        var maintenance = factory.Services.GetRequiredService<PartitionMaintenance>().RunOnceAsync(CancellationToken.None);
        var slowest = TimeSpan.Zero;
        var statuses = new List<HttpStatusCode>();
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        while (stopwatch.Elapsed < reportHeld)
        {
            var sent = System.Diagnostics.Stopwatch.StartNew();
            using var response = await http.PostLogAsync(client.ApiKey, Log());
            statuses.Add(response.StatusCode);
            slowest = sent.Elapsed > slowest ? sent.Elapsed : slowest;
        }

        await reading.RollbackAsync();
        await maintenance.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.All(statuses, status => Assert.Equal(HttpStatusCode.Created, status));
        Assert.True(slowest < reportHeld / 2, $"the slowest request took {slowest.TotalMilliseconds:F0} ms");
        Assert.Equal(statuses.Count, await CountLogsAsync(cs));
        // Once the report ends, the same run finishes the work: the partitions are where they should be.
        Assert.Equal(1, await PartitionCountAsync(cs, today.AddDays(7)));
        Assert.Equal(0, await PartitionCountAsync(cs, today.AddDays(-31)));
    }

    [Fact]
    public async Task Commits_and_refusals_are_counted_in_the_ingest_meter()
    {
        var measurements = new ConcurrentBag<(string Instrument, long Value, string? Reason)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, meterListener) =>
        {
            if (instrument.Meter.Name == IngestMetrics.Name)
            {
                meterListener.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string? reason = null;
            foreach (var tag in tags)
            {
                if (tag.Key == "reason")
                {
                    reason = tag.Value as string;
                }
            }

            measurements.Add((instrument.Name, value, reason));
        });
        listener.Start();

        await using var factory = await TrackerApiFactory.CreateAsync(servers);
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        using (var ok = await http.PostBatchAsync(client.ApiKey, [Log(), Log(), Log()]))
        {
            Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
        }

        using (var bad = await http.PostLogAsync(client.ApiKey, Log(ip: "nope")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        }

        Assert.Contains(("tracker.ingest.logs.committed", 3L, (string?)null), measurements);
        Assert.Contains(("tracker.ingest.logs.rejected", 1L, "invalid"), measurements);
    }

    [Fact]
    public async Task Usage_observers_hear_which_clients_changed_after_each_commit()
    {
        var observer = new RecordingObserver();
        await using var factory = (await TrackerApiFactory.CreateAsync(servers))
            .WithServices(services => services.AddSingleton<IUsageChangeObserver>(observer));
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();

        using var response = await http.PostLogAsync(client.ApiKey, Log());

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Contains(client.Id, observer.Changed);
    }

    private static Task<long> PartitionCountAsync(string cs, DateTime day) =>
        ScalarAsync(cs, $"SELECT count(*) FROM pg_class WHERE relname = 'logs_p{day:yyyyMMdd}'");

    private sealed class RecordingObserver : IUsageChangeObserver
    {
        public ConcurrentBag<Guid> Changed { get; } = [];

        public void UsageChanged(IReadOnlyCollection<Guid> clientIds)
        {
            foreach (var clientId in clientIds)
            {
                Changed.Add(clientId);
            }
        }
    }
}
