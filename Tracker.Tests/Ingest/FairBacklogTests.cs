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

        var batch = new FairBacklog.Batch();
        // 3 + 3 = 6 < 7, so a third request is taken whole: 9 logs, one request left for the next batch.
        queue.Fill(batch, maxLogs: 7, maxClientBytes: long.MaxValue);
        Assert.Equal(9, batch.Logs);
        Assert.Equal(3, batch.Requests.Count);
        queue.Release(batch);
        queue.Fill(batch, maxLogs: 7, maxClientBytes: long.MaxValue);
        Assert.Equal(3, batch.Logs);
    }

    [Fact]
    public void A_batch_takes_at_most_a_quantum_of_bytes_from_a_client_and_another_client_s_request_goes_into_the_next()
    {
        var queue = new FairBacklog();
        var backlog = Enumerable.Range(0, 50).Select(_ => Pending(100, bytes: 1_000)).ToList();
        foreach (var pending in backlog)
        {
            queue.TryWrite(Flooder, pending);
        }

        var single = Pending(1, bytes: 200);
        queue.TryWrite(Quiet, single);

        var batch = new FairBacklog.Batch();
        // 1,000 + 1,000 bytes reach the quantum of 1,500: the flooder's turn ends after two requests, the quiet
        // client's follows in the same batch, and the flooder's other 48 wait for later batches.
        queue.Fill(batch, maxLogs: 5_000, maxClientBytes: 1_500);
        Assert.Equal([backlog[0], backlog[1], single], batch.Requests);
    }

    [Fact]
    public void A_batch_is_big_when_one_client_takes_its_share_of_bytes_or_half_its_logs_never_by_the_total_of_many()
    {
        var queue = new FairBacklog();
        for (var client = 0; client < 20; client++)
        {
            queue.TryWrite(Guid.NewGuid(), Pending(100, bytes: 1_000));
        }

        var many = new FairBacklog.Batch();
        queue.Fill(many, maxLogs: 5_000, maxClientBytes: 1_500);
        Assert.Equal(20_000, many.Bytes);
        Assert.False(many.IsBig);

        // Short logs: 30 requests of 100 logs reach half of the batch's logs far below the client's share of bytes.
        for (var request = 0; request < 30; request++)
        {
            queue.TryWrite(Flooder, Pending(100, bytes: 10));
        }

        var byCount = new FairBacklog.Batch();
        queue.Fill(byCount, maxLogs: 5_000, maxClientBytes: 1_000_000);
        Assert.True(byCount.IsBig);

        queue.TryWrite(Quiet, Pending(1, bytes: 2_000));
        var byBytes = new FairBacklog.Batch();
        queue.Fill(byBytes, maxLogs: 5_000, maxClientBytes: 1_500);
        Assert.True(byBytes.IsBig);
    }

    [Fact]
    public void A_client_held_by_a_batch_is_not_given_to_another_until_that_batch_is_released()
    {
        var queue = new FairBacklog();
        var first = Pending(1);
        var second = Pending(1);
        var other = Pending(1);
        queue.TryWrite(Flooder, first);

        var committing = new FairBacklog.Batch();
        queue.Fill(committing, maxLogs: 10, maxClientBytes: long.MaxValue);
        queue.TryWrite(Flooder, second);
        queue.TryWrite(Quiet, other);

        // Another writer loop, while the first batch commits: the quiet client only, not the flooder's second request.
        var beside = new FairBacklog.Batch();
        queue.Fill(beside, maxLogs: 10, maxClientBytes: long.MaxValue);
        Assert.Equal([other], beside.Requests);

        queue.Release(committing);
        queue.Release(beside);
        var next = new FairBacklog.Batch();
        queue.Fill(next, maxLogs: 10, maxClientBytes: long.MaxValue);
        Assert.Equal([second], next.Requests);
    }

    [Fact]
    public void Each_client_s_requests_stay_in_their_order()
    {
        var queue = new FairBacklog();
        var requests = Enumerable.Range(0, 5).Select(_ => Pending(1, bytes: 10)).ToList();
        foreach (var pending in requests)
        {
            queue.TryWrite(Flooder, pending);
        }

        var taken = new List<PendingLogs>();
        var batch = new FairBacklog.Batch();
        while (taken.Count < requests.Count)
        {
            queue.Fill(batch, maxLogs: 10, maxClientBytes: 20);
            taken.AddRange(batch.Requests);
            queue.Release(batch);
        }

        Assert.Equal(requests, taken);
    }

    [Fact]
    public void At_shutdown_what_a_held_client_queued_is_handed_to_the_batch_that_held_it()
    {
        var queue = new FairBacklog();
        queue.TryWrite(Flooder, Pending(1));
        var batch = new FairBacklog.Batch();
        queue.Fill(batch, maxLogs: 10, maxClientBytes: long.MaxValue);
        var late = Pending(1);
        queue.TryWrite(Flooder, late);

        queue.Complete();
        queue.Release(batch);

        // No turn can be given any more: the request comes back in the batch, for its loop to write.
        Assert.Equal([late], batch.Requests);
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
        var batch = new FairBacklog.Batch();
        queue.Fill(batch, maxLogs: 10, maxClientBytes: long.MaxValue);
        Assert.Equal(1, batch.Logs);
        queue.Release(batch);
        Assert.Empty(batch.Requests);
        Assert.False(await queue.WaitToReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5)));
    }

    private static PendingLogs Pending(int logs, long bytes = 0) =>
        new(Enumerable.Range(0, logs)
            .Select(_ => new LogRecord(Guid.Empty, Guid.Empty, DateTimeOffset.UnixEpoch, IPAddress.Loopback, "GET", "/"))
            .ToArray(), long.MaxValue, bytes);
}
