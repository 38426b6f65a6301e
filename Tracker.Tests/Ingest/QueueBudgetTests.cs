using System.Net;
using Tracker.ApiService.Ingest;

namespace Tracker.Tests.Ingest;

public sealed class QueueBudgetTests
{
    private static readonly Guid Flooder = Guid.NewGuid();
    private static readonly Guid Quiet = Guid.NewGuid();

    [Fact]
    public void A_client_past_its_share_is_refused_while_another_still_gets_in()
    {
        var budget = new QueueBudget(maxLogs: 100, maxBytes: long.MaxValue, clientShare: 0.25);

        Assert.Equal(EnqueueResult.Queued, budget.TryReserve(Flooder, 20, 0));
        Assert.Equal(EnqueueResult.Queued, budget.TryReserve(Flooder, 5, 0));
        Assert.Equal(EnqueueResult.ClientShareFull, budget.TryReserve(Flooder, 1, 0));
        Assert.Equal(EnqueueResult.Queued, budget.TryReserve(Quiet, 25, 0));
        Assert.Equal(50, budget.Logs);
    }

    [Fact]
    public void Bytes_are_bounded_like_logs()
    {
        var budget = new QueueBudget(maxLogs: 1_000_000, maxBytes: 10_000, clientShare: 0.5);

        Assert.Equal(EnqueueResult.Queued, budget.TryReserve(Flooder, 1, 4_000));
        Assert.Equal(EnqueueResult.ClientShareFull, budget.TryReserve(Flooder, 1, 2_000));
        Assert.Equal(EnqueueResult.Queued, budget.TryReserve(Quiet, 1, 5_000));
        Assert.Equal(EnqueueResult.QueueFull, budget.TryReserve(Guid.NewGuid(), 1, 2_000));
        Assert.Equal(9_000, budget.Bytes);
    }

    [Fact]
    public void A_client_holding_nothing_is_let_in_with_a_request_larger_than_its_share()
    {
        var budget = new QueueBudget(maxLogs: 100, maxBytes: long.MaxValue, clientShare: 0.1);

        Assert.Equal(EnqueueResult.Queued, budget.TryReserve(Flooder, 30, 0));
        Assert.Equal(EnqueueResult.ClientShareFull, budget.TryReserve(Flooder, 1, 0));
        Assert.Equal(EnqueueResult.QueueFull, budget.TryReserve(Quiet, 71, 0));
    }

    [Fact]
    public void Released_room_can_be_taken_again_and_a_refusal_holds_nothing()
    {
        var budget = new QueueBudget(maxLogs: 10, maxBytes: long.MaxValue, clientShare: 1);

        Assert.Equal(EnqueueResult.Queued, budget.TryReserve(Flooder, 8, 0));
        Assert.Equal(EnqueueResult.QueueFull, budget.TryReserve(Quiet, 3, 0));
        budget.Release(Flooder, 8, 0);
        Assert.Equal(0, budget.Logs);
        Assert.Equal(EnqueueResult.Queued, budget.TryReserve(Quiet, 10, 0));
    }

    [Fact]
    public void The_estimate_grows_with_the_strings_a_log_holds()
    {
        var shortLog = new LogRecord(Guid.Empty, Guid.Empty, DateTimeOffset.UnixEpoch, IPAddress.Loopback, "GET", "/");
        var longLog = shortLog with { Endpoint = "/" + new string('e', 999) };

        Assert.Equal(2 * 999, QueueBudget.EstimateBytes(longLog) - QueueBudget.EstimateBytes(shortLog));
    }

    [Fact]
    public void Peek_says_a_request_would_be_refused_only_when_any_request_would_be()
    {
        var budget = new QueueBudget(maxLogs: 100, maxBytes: long.MaxValue, clientShare: 0.25);

        Assert.Equal(EnqueueResult.Queued, budget.Peek(Flooder));
        Assert.Equal(EnqueueResult.Queued, budget.TryReserve(Flooder, 24, 0));
        // One log more still fits the share of 25.
        Assert.Equal(EnqueueResult.Queued, budget.Peek(Flooder));
        Assert.Equal(EnqueueResult.Queued, budget.TryReserve(Flooder, 1, 0));
        Assert.Equal(EnqueueResult.ClientShareFull, budget.Peek(Flooder));
        Assert.Equal(EnqueueResult.Queued, budget.Peek(Quiet));
        Assert.Equal(EnqueueResult.Queued, budget.TryReserve(Quiet, 25, 0));
        Assert.Equal(EnqueueResult.Queued, budget.TryReserve(Guid.NewGuid(), 25, 0));
        Assert.Equal(EnqueueResult.Queued, budget.TryReserve(Guid.NewGuid(), 25, 0));
        Assert.Equal(EnqueueResult.QueueFull, budget.Peek(Guid.NewGuid()));
    }
}
