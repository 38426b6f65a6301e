using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Tracker.ApiService.Ingest;

namespace Tracker.Tests.Ingest;

/// <summary>
/// The writer's handling of a commit whose outcome is unknown (the connection died while COMMIT was in flight),
/// which a real server cannot be made to produce on demand.
/// </summary>
public sealed class LogBatchWriterTests
{
    [Fact]
    public async Task A_batch_that_did_commit_before_the_connection_died_is_acknowledged_and_not_written_again()
    {
        var committer = new UncertainCommitter(commitBeforeFailing: true);

        var outcome = await WriteOneAsync(committer);

        Assert.Equal(WriteOutcome.Committed, outcome);
        Assert.Equal(1, committer.Attempts);
        Assert.Single(committer.Committed);
    }

    [Fact]
    public async Task A_batch_that_did_not_commit_is_written_again_once()
    {
        var committer = new UncertainCommitter(commitBeforeFailing: false);

        var outcome = await WriteOneAsync(committer);

        Assert.Equal(WriteOutcome.Committed, outcome);
        Assert.Equal(2, committer.Attempts);
        Assert.Single(committer.Committed);
    }

    private static async Task<WriteOutcome> WriteOneAsync(ILogBatchCommitter committer)
    {
        await using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var writer = new LogBatchWriter(
            Options.Create(new IngestOptions { Writers = 1 }),
            committer,
            new IngestMetrics(services.GetRequiredService<IMeterFactory>()),
            new NoObserver(),
            TimeProvider.System,
            NullLogger<LogBatchWriter>.Instance);
        await writer.StartAsync(CancellationToken.None);
        try
        {
            var log = new LogRecord(Guid.NewGuid(), Guid.NewGuid(), DateTimeOffset.UtcNow, IPAddress.Loopback, "GET", "/");
            Assert.Equal(EnqueueResult.Queued, writer.TryEnqueue([log], out var pending));
            return await pending!.Outcome.WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            await writer.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>Fails its first commit with an unknown outcome, having committed it or not.</summary>
    private sealed class UncertainCommitter(bool commitBeforeFailing) : ILogBatchCommitter
    {
        private int _attempts;

        public ConcurrentBag<Guid> Committed { get; } = [];

        public int Attempts => _attempts;

        public Task CommitAsync(IReadOnlyList<PendingLogs> batch, Guid batchId, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref _attempts) == 1)
            {
                if (commitBeforeFailing)
                {
                    Committed.Add(batchId);
                }

                throw new AmbiguousCommitException(batchId, batch, new IOException("connection reset during COMMIT"));
            }

            Committed.Add(batchId);
            return Task.CompletedTask;
        }

        public Task<bool> WasCommittedAsync(Guid batchId, CancellationToken cancellationToken) =>
            Task.FromResult(Committed.Contains(batchId));
    }

    private sealed class NoObserver : IUsageChangeObserver
    {
        public void UsageChanged(IReadOnlyCollection<Guid> clientIds)
        {
        }
    }
}
