using System.Net;
using Tracker.ApiService.Ingest;

namespace Tracker.Tests.Ingest;

public sealed class BatchingPolicyTests
{
    [Fact]
    public void A_batch_takes_everything_queued_up_to_the_maximum_without_splitting_a_request()
    {
        var queue = new Queue<PendingLogs>([Pending(3), Pending(3), Pending(3), Pending(3)]);
        var batch = new List<PendingLogs>();

        var taken = BatchingPolicy.Fill(batch, maxLogs: 7, queue.TryDequeue);

        // 3 + 3 = 6 < 7, so a third request is taken whole: 9 logs, one request left for the next batch.
        Assert.Equal(9, taken);
        Assert.Equal(3, batch.Count);
        Assert.Single(queue);
    }

    [Fact]
    public void Under_light_load_a_batch_is_one_request_written_at_once()
    {
        var queue = new Queue<PendingLogs>([Pending(1)]);
        var batch = new List<PendingLogs>();

        Assert.Equal(1, BatchingPolicy.Fill(batch, maxLogs: 5000, queue.TryDequeue));
        Assert.Single(batch);
    }

    [Fact]
    public void Filling_continues_from_what_a_batch_already_holds()
    {
        var queue = new Queue<PendingLogs>([Pending(5), Pending(5)]);
        var batch = new List<PendingLogs> { Pending(8) };

        Assert.Equal(13, BatchingPolicy.Fill(batch, maxLogs: 10, queue.TryDequeue, alreadyTaken: 8));
        Assert.Equal(2, batch.Count);
    }

    [Fact]
    public async Task Overdue_requests_are_answered_timed_out_and_leave_the_batch()
    {
        var overdue = Pending(2, deadline: 100);
        var onTime = Pending(3, deadline: 300);
        var batch = new List<PendingLogs> { overdue, onTime };

        var expiredLogs = BatchingPolicy.ExpireOverdue(batch, now: 200);

        Assert.Equal(2, expiredLogs);
        Assert.Equal([onTime], batch);
        Assert.Equal(WriteOutcome.TimedOut, await overdue.Outcome);
        Assert.False(onTime.IsSettled);
    }

    [Fact]
    public async Task Settling_decides_at_once_releases_every_request_and_keeps_the_first_outcome()
    {
        var batch = Enumerable.Range(0, 5).Select(_ => Pending(1)).ToList();
        batch[0].Settle(WriteOutcome.Refused);

        PendingLogs.SettleAll(batch, WriteOutcome.Committed);

        Assert.All(batch, pending => Assert.True(pending.IsSettled));
        var outcomes = await Task.WhenAll(batch.Select(pending => pending.Outcome)).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([WriteOutcome.Refused, .. Enumerable.Repeat(WriteOutcome.Committed, 4)], outcomes);
    }

    [Fact]
    public async Task A_refused_row_costs_only_its_own_request()
    {
        var batch = Enumerable.Range(0, 10).Select(_ => Pending(2)).ToList();
        var poison = batch[6];
        var commits = 0;

        var refused = await BatchingPolicy.CommitIsolatingRefusalsAsync(batch, part =>
        {
            commits++;
            if (part.Contains(poison))
            {
                throw new RefusedException();
            }

            Settle(part);
            return Task.CompletedTask;
        }, exception => exception is RefusedException);

        Assert.Equal([poison], refused);
        Assert.Equal(WriteOutcome.Refused, await poison.Outcome);
        Assert.All(await Task.WhenAll(batch.Where(pending => pending != poison).Select(pending => pending.Outcome)),
            outcome => Assert.Equal(WriteOutcome.Committed, outcome));
        // Halving finds one bad request among 10 in a handful of attempts, not one per request.
        Assert.InRange(commits, 2, 2 * (int)Math.Ceiling(Math.Log2(batch.Count)) + 1);
    }

    [Fact]
    public async Task Several_refused_rows_are_each_isolated()
    {
        var batch = Enumerable.Range(0, 16).Select(_ => Pending(1)).ToList();
        var poisons = new HashSet<PendingLogs> { batch[0], batch[7], batch[15] };

        var refused = await BatchingPolicy.CommitIsolatingRefusalsAsync(batch, part =>
        {
            if (part.Any(poisons.Contains))
            {
                throw new RefusedException();
            }

            Settle(part);
            return Task.CompletedTask;
        }, exception => exception is RefusedException);

        Assert.Equal(poisons, refused.ToHashSet());
        var committed = batch.Where(pending => !poisons.Contains(pending)).ToList();
        Assert.All(committed, pending => Assert.True(pending.IsSettled));
        Assert.All(await Task.WhenAll(committed.Select(pending => pending.Outcome)), outcome => Assert.Equal(WriteOutcome.Committed, outcome));
    }

    [Fact]
    public async Task Any_other_failure_propagates_and_what_committed_before_it_stays_settled()
    {
        var batch = Enumerable.Range(0, 8).Select(_ => Pending(1)).ToList();
        var poison = batch[0];
        var calls = 0;

        await Assert.ThrowsAsync<TimeoutException>(() => BatchingPolicy.CommitIsolatingRefusalsAsync(batch, part =>
        {
            calls++;
            if (part.Contains(poison))
            {
                throw new RefusedException();
            }

            if (calls > 3)
            {
                throw new TimeoutException("database went away");
            }

            Settle(part);
            return Task.CompletedTask;
        }, exception => exception is RefusedException));

        // The writer retries only the unsettled rest: nothing committed is written twice.
        var settled = batch.Where(pending => pending.IsSettled).ToList();
        Assert.NotEmpty(settled);
        Assert.Contains(batch, pending => !pending.IsSettled);
    }

    private static void Settle(IReadOnlyList<PendingLogs> part)
    {
        PendingLogs.SettleAll(part, WriteOutcome.Committed);
    }

    private static PendingLogs Pending(int logs, long deadline = long.MaxValue) =>
        new(Enumerable.Range(0, logs)
            .Select(_ => new LogRecord(Guid.Empty, Guid.Empty, DateTimeOffset.UnixEpoch, IPAddress.Loopback, "GET", "/"))
            .ToArray(), deadline);

    private sealed class RefusedException : Exception;
}
