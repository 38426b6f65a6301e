using System.Net;
using Tracker.ApiService.Ingest;

namespace Tracker.Tests.Ingest;

public sealed class FairBacklogTests
{
    private static readonly Guid Flooder = Guid.NewGuid();
    private static readonly Guid Quiet = Guid.NewGuid();

    [Fact]
    public void A_batch_takes_everything_queued_up_to_the_maximum_without_splitting_a_request()
    {
        var queue = new FairBacklog();
        foreach (var logs in new[] { 3, 3, 3, 3 })
        {
            queue.TryWrite(Flooder, Pending(logs));
        }

        var batch = new List<PendingLogs>();
        // 3 + 3 = 6 < 7, so a third request is taken whole: 9 logs, one request left for the next batch.
        Assert.Equal(9, queue.Fill(batch, maxLogs: 7));
        Assert.Equal(3, batch.Count);
        Assert.Equal(3, queue.Fill([], maxLogs: 7));
    }

    [Fact]
    public void Another_client_s_request_goes_into_the_next_batch_however_long_a_backlog_was_queued_before_it()
    {
        var queue = new FairBacklog();
        var backlog = Enumerable.Range(0, 50).Select(_ => Pending(100)).ToList();
        foreach (var pending in backlog)
        {
            queue.TryWrite(Flooder, pending);
        }

        var single = Pending(1);
        queue.TryWrite(Quiet, single);

        var batch = new List<PendingLogs>();
        queue.Fill(batch, maxLogs: 150);
        Assert.Equal([backlog[0], single, backlog[1]], batch);
    }

    [Fact]
    public void Each_client_s_requests_stay_in_their_order()
    {
        var queue = new FairBacklog();
        var first = Pending(1);
        var second = Pending(1);
        var other = Pending(1);
        queue.TryWrite(Flooder, first);
        queue.TryWrite(Flooder, second);
        queue.TryWrite(Quiet, other);

        var batch = new List<PendingLogs>();
        queue.Fill(batch, maxLogs: 10);
        Assert.Equal([first, other, second], batch);
    }

    [Fact]
    public async Task Readers_wake_for_a_write_and_end_once_completed_and_drained()
    {
        var queue = new FairBacklog();
        var waiting = queue.WaitToReadAsync().AsTask();
        Assert.False(waiting.IsCompleted);

        queue.TryWrite(Quiet, Pending(1));
        Assert.True(await waiting.WaitAsync(TimeSpan.FromSeconds(5)));

        queue.Complete();
        // A client with nothing waiting is refused; what is waiting is still drained.
        Assert.False(queue.TryWrite(Flooder, Pending(1)));
        Assert.True(await queue.WaitToReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(1, queue.Fill([], maxLogs: 10));
        Assert.False(await queue.WaitToReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5)));
    }

    private static PendingLogs Pending(int logs) =>
        new(Enumerable.Range(0, logs)
            .Select(_ => new LogRecord(Guid.Empty, Guid.Empty, DateTimeOffset.UnixEpoch, IPAddress.Loopback, "GET", "/"))
            .ToArray(), long.MaxValue);
}
