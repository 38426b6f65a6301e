using System.Threading.Channels;
using Microsoft.Extensions.Options;
using Tracker.ApiService.Storage;
using Tracker.ApiService.Ingest;

namespace Tracker.ApiService.Usage;

/// <summary>
/// Hears from the log writer which clients' usage each commit changed and publishes it to every instance by
/// advancing their <see cref="UsageGenerations"/> in Redis. Changes are coalesced: at most one publication per
/// <see cref="UsageOptions.PublishInterval"/>, however many batches commit, so heavy ingest costs one Redis round
/// trip per interval and each busy client's cached answers are recomputed at most once per interval.
/// </summary>
public sealed class UsageChangePublisher(
    UsageGenerations generations, RedisAvailability redis, UsageMetrics metrics, IOptions<UsageOptions> options,
    TimeProvider time) : BackgroundService, IUsageChangeObserver
{
    private readonly Lock _gate = new();
    private readonly Channel<bool> _wakeUp = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private HashSet<Guid> _changed = [];

    /// <summary>Called by the log writer after each commit, before the requests are answered: it only records.</summary>
    public void UsageChanged(IReadOnlyCollection<Guid> clientIds)
    {
        lock (_gate)
        {
            _changed.UnionWith(clientIds);
        }

        _wakeUp.Writer.TryWrite(true);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.PublishInterval;
        try
        {
            while (await _wakeUp.Reader.WaitToReadAsync(stoppingToken))
            {
                _wakeUp.Reader.TryRead(out _);
                await PublishPendingAsync();
                // Whatever commits during the pause is published together at its end.
                await Task.Delay(interval, time, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        // The log writer stops before this service (it was registered later) and has drained its queue by now:
        // publish its last commits, or other instances would keep their old answers until those expire.
        await PublishPendingAsync();
    }

    private async Task PublishPendingAsync()
    {
        HashSet<Guid> changed;
        lock (_gate)
        {
            if (_changed.Count == 0)
            {
                return;
            }

            (changed, _changed) = (_changed, []);
        }

        if (redis.IsAvailable)
        {
            try
            {
                await generations.AdvanceAsync(changed);
                metrics.Published(changed.Count);
                return;
            }
            catch (Exception exception) when (redis.FellBack(nameof(UsageChangePublisher), exception))
            {
            }
        }

        // Keep them for the next attempt; meanwhile every instance's generations follow the clock (see
        // UsageGenerations), so answers stay fresh without these.
        lock (_gate)
        {
            _changed.UnionWith(changed);
        }

        _wakeUp.Writer.TryWrite(true);
    }
}
