using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using Tracker.ApiService.Storage;

namespace Tracker.ApiService.Usage;

/// <summary>
/// Version stamps that keep cached usage answers fresh on every instance. A generation is an opaque token kept in
/// Redis, one per client (for <c>daily</c>) and one for everyone (for <c>top</c>); it is part of every cache key,
/// and <see cref="UsageChangePublisher"/> replaces it after a commit changed that usage. An answer computed from
/// older data can only ever be stored under a token that is no longer current, so no race can pin a stale
/// answer, and an instance learns of a change at most <see cref="UsageOptions.GenerationLifetime"/> after it
/// was published. Tokens are random, not counters: if Redis restarts empty, the new tokens collide with nothing
/// an instance still holds in memory.
/// </summary>
public sealed class UsageGenerations(
    IConnectionMultiplexer redis,
    RedisAvailability availability,
    HybridCache cache,
    IOptions<UsageOptions> options,
    IOptions<RedisCacheOptions> cacheOptions,
    TimeProvider time)
{
    private const string TopScope = "top";

    /// <summary>A generation outlives its last change by this long; an expired one is simply replaced by a new token.</summary>
    private static readonly TimeSpan TokenLifetime = TimeSpan.FromDays(1);

    // One round trip: the current token, or a new one stored if there is none (first use, or Redis restarted).
    private static readonly LuaScript GetOrStart = LuaScript.Prepare("""
        local current = redis.call('GET', @key)
        if current then return current end
        redis.call('SET', @key, @token, 'EX', @seconds)
        return @token
        """);

    private readonly HybridCacheEntryOptions _localOnly = new()
    {
        LocalCacheExpiration = options.Value.GenerationLifetime,
        Flags = HybridCacheEntryFlags.DisableDistributedCache,
    };

    /// <summary>The current generation of <paramref name="clientId"/>'s usage.</summary>
    public ValueTask<string> OfClientAsync(Guid clientId, CancellationToken cancellationToken) =>
        CurrentAsync(clientId.ToString("N"), cancellationToken);

    /// <summary>The current generation of every client's usage taken together (what <c>top</c> reads).</summary>
    public ValueTask<string> OfAllAsync(CancellationToken cancellationToken) => CurrentAsync(TopScope, cancellationToken);

    /// <summary>Starts new generations for <paramref name="clientIds"/> and for everyone, in one pipelined batch.</summary>
    public async Task AdvanceAsync(IReadOnlyCollection<Guid> clientIds)
    {
        var database = redis.GetDatabase();
        var batch = database.CreateBatch();
        var writes = new List<Task>(clientIds.Count + 1)
        {
            batch.StringSetAsync(RedisKey(TopScope), NewToken(), TokenLifetime),
        };
        foreach (var clientId in clientIds)
        {
            writes.Add(batch.StringSetAsync(RedisKey(clientId.ToString("N")), NewToken(), TokenLifetime));
        }

        batch.Execute();
        await Task.WhenAll(writes);
    }

    private ValueTask<string> CurrentAsync(string scope, CancellationToken cancellationToken) =>
        cache.GetOrCreateAsync("usage-generation:" + scope, scope, ReadAsync, _localOnly, cancellationToken: cancellationToken);

    private async ValueTask<string> ReadAsync(string scope, CancellationToken cancellationToken)
    {
        if (availability.IsAvailable)
        {
            try
            {
                var token = await redis.GetDatabase().ScriptEvaluateAsync(GetOrStart,
                    new { key = (RedisKey)RedisKey(scope), token = NewToken(), seconds = (long)TokenLifetime.TotalSeconds });
                return (string)token!;
            }
            catch (Exception exception) when (availability.FellBack(nameof(UsageGenerations), exception))
            {
            }
        }

        // Without Redis no instance can hear of another's changes, so the generation follows the clock instead:
        // a new one every GenerationLifetime keeps answers within the freshness bound from PostgreSQL alone.
        var lifetime = options.Value.GenerationLifetime;
        return "local-" + (time.GetUtcNow().Ticks / lifetime.Ticks).ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    // Beside the cache's own keys, under its prefix.
    private string RedisKey(string scope) => cacheOptions.Value.InstanceName + "usage-generation:" + scope;

    private static string NewToken() => Guid.NewGuid().ToString("N")[..12];
}
