using StackExchange.Redis;
using Tracker.ApiService.Storage;

namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// Sends one policy's decisions to Redis, one round trip at a time: requests that arrive while a round trip is
/// in flight — for any partition of the policy — are decided together by the next one, in arrival order. Under
/// load a round trip then carries tens of decisions instead of one, and each decision stays exact (the script
/// runs atomically, a repeated key seeing the state its earlier requests left). At low load nothing waits: a
/// lone request goes at once.
/// </summary>
internal sealed class RedisDecisionBatcher(RateLimitRule rule, RedisRateStore store, RedisAvailability redis)
{
    /// <summary>Decisions per round trip, at most, so that one script never holds Redis for long.</summary>
    private const int MaxBatch = 256;

    private readonly Lock _gate = new();
    private List<(RedisKey Key, TokenRequest Request, TaskCompletionSource<RateDecision?> Waiter)> _queued = [];
    private bool _roundTripInFlight;

    /// <summary>
    /// The decision for one request of <paramref name="key"/>, or null when Redis failed and the caller must fall
    /// back. <paramref name="request"/> is what the request spends, holds and hands back.
    /// </summary>
    public Task<RateDecision?> DecideAsync(string key, TokenRequest request)
    {
        // Continuations run synchronously: the loop below releases a round trip's requests one after another on
        // its own thread-pool thread, one hop per round trip instead of a wake-up per request (on two cores those
        // wake-ups cost more CPU than the requests' code). The loop holds no lock while it does.
        var waiter = new TaskCompletionSource<RateDecision?>();
        bool lead;
        lock (_gate)
        {
            _queued.Add((key, request, waiter));
            lead = !_roundTripInFlight;
            _roundTripInFlight = true;
        }

        if (lead)
        {
            _ = DecideQueuedAsync();
        }

        return waiter.Task;
    }

    private async Task DecideQueuedAsync()
    {
        while (true)
        {
            List<(RedisKey Key, TokenRequest Request, TaskCompletionSource<RateDecision?> Waiter)> batch;
            lock (_gate)
            {
                if (_queued.Count == 0)
                {
                    _roundTripInFlight = false;
                    return;
                }

                if (_queued.Count <= MaxBatch)
                {
                    (batch, _queued) = (_queued, []);
                }
                else
                {
                    batch = _queued[..MaxBatch];
                    _queued.RemoveRange(0, MaxBatch);
                }
            }

            // On a cluster one script may only touch keys of one hash slot: a round trip is then a script per slot,
            // sent together. A slot whose master is down falls back alone.
            if (store.IsCluster)
            {
                await Task.WhenAll(batch.GroupBy(item => store.HashSlot(item.Key)).Select(slot => DecideTogetherAsync([.. slot])));
            }
            else
            {
                await DecideTogetherAsync(batch);
            }
        }
    }

    /// <summary>One script call deciding <paramref name="batch"/> (keys of one hash slot on a cluster).</summary>
    private async Task DecideTogetherAsync(List<(RedisKey Key, TokenRequest Request, TaskCompletionSource<RateDecision?> Waiter)> batch)
    {
        try
        {
            RedisKey[] keys = [.. batch.Select(item => item.Key)];
            TokenRequest[] requests = [.. batch.Select(item => item.Request)];
            var decisions = rule switch
            {
                FixedWindowRule window => await store.DecideAsync(window, keys, requests),
                TokenBucketRule bucket => await store.DecideAsync(bucket, keys, requests),
                _ => throw new InvalidOperationException($"Unknown rate limit rule {rule}."),
            };
            for (var index = 0; index < batch.Count; index++)
            {
                batch[index].Waiter.TrySetResult(decisions[index]);
            }
        }
        catch (Exception exception) when (redis.FellBack(nameof(RedisDecisionBatcher), exception))
        {
            // Each waiting request falls back to this instance's memory.
            batch.ForEach(item => item.Waiter.TrySetResult(null));
        }
        catch (Exception exception)
        {
            // Anything else is a bug: those requests fail (500), and the loop goes on for the next ones.
            batch.ForEach(item => item.Waiter.TrySetException(exception));
        }
    }
}
