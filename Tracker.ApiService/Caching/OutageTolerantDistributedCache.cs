using Microsoft.Extensions.Caching.Distributed;
using Tracker.ApiService.Storage;

namespace Tracker.ApiService.Caching;

/// <summary>
/// The Redis tier as HybridCache sees it, with a failed read answered as a miss and a failed write skipped.
/// Callers stop using the tier once <see cref="RedisAvailability"/> reports an outage, but the commands already
/// on their way when Redis goes down fail first; HybridCache would log each as an error, so an outage would be
/// logged per request after all. Here they are counted as fallbacks instead, and the outage is logged once.
/// Removal still fails loudly: a caller revoking something must know it did not reach Redis.
/// </summary>
internal sealed class OutageTolerantDistributedCache(IDistributedCache redis, RedisAvailability availability) : IDistributedCache
{
    public byte[]? Get(string key)
    {
        try
        {
            return redis.Get(key);
        }
        catch (Exception exception) when (IsOutage(exception))
        {
            return null;
        }
    }

    public async Task<byte[]?> GetAsync(string key, CancellationToken token = default)
    {
        try
        {
            return await redis.GetAsync(key, token);
        }
        catch (Exception exception) when (IsOutage(exception))
        {
            return null;
        }
    }

    public void Set(string key, byte[] value, DistributedCacheEntryOptions options)
    {
        try
        {
            redis.Set(key, value, options);
        }
        catch (Exception exception) when (IsOutage(exception))
        {
        }
    }

    public async Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default)
    {
        try
        {
            await redis.SetAsync(key, value, options, token);
        }
        catch (Exception exception) when (IsOutage(exception))
        {
        }
    }

    public void Refresh(string key)
    {
        try
        {
            redis.Refresh(key);
        }
        catch (Exception exception) when (IsOutage(exception))
        {
        }
    }

    public async Task RefreshAsync(string key, CancellationToken token = default)
    {
        try
        {
            await redis.RefreshAsync(key, token);
        }
        catch (Exception exception) when (IsOutage(exception))
        {
        }
    }

    public void Remove(string key) => redis.Remove(key);

    public Task RemoveAsync(string key, CancellationToken token = default) => redis.RemoveAsync(key, token);

    private bool IsOutage(Exception exception) => availability.FellBack("cache", exception);
}
