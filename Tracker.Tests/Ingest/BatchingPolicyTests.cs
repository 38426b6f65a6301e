using System.Net;
using Tracker.ApiService.Ingest;

namespace Tracker.Tests.Ingest;

public sealed class BatchingPolicyTests
{
    [Fact]
    public void Overdue_requests_leave_the_batch()
    {
        var overdue = Pending(2, deadline: 100);
        var onTime = Pending(3, deadline: 300);
        var batch = new List<PendingLogs> { overdue, onTime };

        var taken = BatchingPolicy.TakeOverdue(batch, now: 200);

        Assert.Equal([overdue], taken);
        Assert.Equal([onTime], batch);
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
    public async Task A_refused_request_is_isolated_and_every_other_is_written_exactly_once()
    {
        var poison = 6;
        var written = new List<int>();
        var attempts = 0;

        var refused = await BatchingPolicy.IsolateRefusalsAsync(10, (start, count) =>
        {
            attempts++;
            var part = Enumerable.Range(start, count).ToList();
            if (part.Contains(poison))
            {
                return Task.FromResult(false);
            }

            written.AddRange(part);
            return Task.FromResult(true);
        });

        Assert.Equal([poison], refused);
        Assert.Equal(Enumerable.Range(0, 10).Where(index => index != poison), written.Order());
        // Halving finds one bad request among 10 in a handful of attempts, not one per request.
        Assert.InRange(attempts, 2, 2 * (int)Math.Ceiling(Math.Log2(10)) + 1);
    }

    [Fact]
    public async Task Several_refused_requests_are_each_isolated()
    {
        var poisons = new HashSet<int> { 0, 7, 15 };
        var written = new List<int>();

        var refused = await BatchingPolicy.IsolateRefusalsAsync(16, (start, count) =>
        {
            var part = Enumerable.Range(start, count).ToList();
            if (part.Any(poisons.Contains))
            {
                return Task.FromResult(false);
            }

            written.AddRange(part);
            return Task.FromResult(true);
        });

        Assert.Equal([0, 7, 15], refused);
        Assert.Equal(Enumerable.Range(0, 16).Where(index => !poisons.Contains(index)), written.Order());
    }

    [Fact]
    public async Task Any_other_failure_propagates()
    {
        await Assert.ThrowsAsync<TimeoutException>(() => BatchingPolicy.IsolateRefusalsAsync(8, (start, _) =>
            start == 0 ? Task.FromResult(false) : throw new TimeoutException("database went away")));
    }

    private static PendingLogs Pending(int logs, long deadline = long.MaxValue) =>
        new(Enumerable.Range(0, logs)
            .Select(_ => new LogRecord(Guid.Empty, Guid.Empty, DateTimeOffset.UnixEpoch, IPAddress.Loopback, "GET", "/"))
            .ToArray(), deadline);
}
