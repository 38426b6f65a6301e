using System.ComponentModel;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Hybrid;
using Tracker.ApiService.Caching;
using Tracker.ApiService.Storage;
using Tracker.Data;

namespace Tracker.ApiService.ApiKeys;

/// <summary>An active key as ingest sees it. Immutable, so the memory tier hands out one shared instance
/// instead of deserializing a copy per lookup.</summary>
[ImmutableObject(true)]
public sealed record ActiveApiKey(Guid Id, Guid ClientId);

/// <summary>
/// Finds the active key for a presented key through the hybrid cache, so the ingest hot path makes no database
/// round trip. Revocation must reach every instance within a second: the in-memory tier keeps an answer for at
/// most <see cref="LocalLifetime"/>, after which the instance reads Redis again, where revocation removed it; a key
/// remembered longer (<see cref="RememberedKeys"/>) is answered only until the instance reads its revocation
/// (<see cref="RevocationWatch"/>), at most <see cref="LocalLifetime"/> after it was announced.
/// </summary>
public sealed partial class ApiKeyStore(
    TieredCache cache, RememberedKeys remembered, RevocationWatch watch, CacheMetrics metrics, IServiceScopeFactory scopes,
    IHostApplicationLifetime lifetime, ILogger<ApiKeyStore> logger)
{
    /// <summary>How long an instance may answer from memory; bounds how late it learns of a revocation.</summary>
    public static readonly TimeSpan LocalLifetime = TimeSpan.FromMilliseconds(500);

    /// <summary>A second removal this long after revocation clears an entry that a lookup racing with the
    /// revocation may have written back with the old answer.</summary>
    private static readonly TimeSpan SecondInvalidationDelay = TimeSpan.FromSeconds(1);

    /// <summary>How long an instance remembers that a presented key does not exist. Never in Redis: anyone can
    /// present as many made-up keys as they like. Kept short, as a key unknown now may be created later.</summary>
    private static readonly TimeSpan UnknownKeyLifetime = TimeSpan.FromSeconds(5);

    private static readonly HybridCacheEntryOptions EntryOptions = new()
    {
        Expiration = TimeSpan.FromMinutes(10),
        LocalCacheExpiration = LocalLifetime,
    };

    private const string CacheName = "api-key";

    public ValueTask<ActiveApiKey?> FindActiveAsync(byte[] keyHash, CancellationToken cancellationToken) =>
        Remembered(keyHash) is { } known ? ValueTask.FromResult<ActiveApiKey?>(known) : LookUpAsync(keyHash, cancellationToken);

    /// <summary>The active key for <paramref name="keyHash"/> if memory or a cache tier knows it; never asks the database.</summary>
    public ValueTask<ActiveApiKey?> FindCachedActiveAsync(byte[] keyHash, CancellationToken cancellationToken) =>
        Remembered(keyHash) is { } known
            ? ValueTask.FromResult<ActiveApiKey?>(known)
            : cache.GetCachedAsync<ActiveApiKey>(CacheName, CacheKey(keyHash), EntryOptions, cancellationToken);

    /// <summary>
    /// Forgets what is cached for a key, in this instance's memory and in Redis, and, if <paramref name="announce"/>,
    /// in what every instance remembers; call after revoking it.
    /// </summary>
    public async Task InvalidateAsync(byte[] keyHash, bool announce, CancellationToken cancellationToken)
    {
        remembered.Forget(keyHash);
        try
        {
            await ForgetEverywhereAsync(keyHash, announce, cancellationToken);
        }
        catch (Exception exception) when (RedisAvailability.IsCommandFailure(exception))
        {
            // The revocation is committed; while Redis is down no instance reads the Redis tier or remembers keys past
            // the memory tier's lifetime, and the second removal below tries again.
        }

        var stopping = lifetime.ApplicationStopping;
        _ = Task.Run(async () =>
        {
            try
            {
                await Task.Delay(SecondInvalidationDelay, stopping);
                await ForgetEverywhereAsync(keyHash, announce, stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                // Shutting down: this instance's memory goes with it, and the Redis entry expires by itself.
            }
            catch (Exception exception)
            {
                LogSecondInvalidationFailed(exception);
            }
        }, CancellationToken.None);
    }

    /// <summary>
    /// Removes from Redis every key revoked recently enough that Redis may still hold it as active: an entry
    /// written before a revocation lives at most its lifetime after it. Called when Redis is back after an outage,
    /// during which revocations reached only PostgreSQL and memory. Read from PostgreSQL, so it covers keys revoked
    /// by any instance, also one that has stopped since.
    /// </summary>
    public async Task ForgetRecentlyRevokedAsync(TimeProvider time, CancellationToken cancellationToken)
    {
        // A minute more for clocks that differ between instances: revocation times are theirs.
        var since = time.GetUtcNow() - EntryOptions.Expiration!.Value - TimeSpan.FromMinutes(1);
        List<byte[]> revoked;
        await using (var scope = scopes.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<TrackerDbContext>();
            revoked = await db.ApiKeys.AsNoTracking()
                .Where(key => key.RevokedAt != null && key.RevokedAt > since)
                .Select(key => key.KeyHash)
                .ToListAsync(cancellationToken);
        }

        foreach (var keyHash in revoked)
        {
            await cache.RemoveAsync(CacheKey(keyHash), cancellationToken);
        }

        await watch.AnnounceAllAsync();

        LogRevokedForgotten(revoked.Count);
    }

    // The key if this instance remembers it, counted as a memory hit like the memory tier's own.
    private ActiveApiKey? Remembered(byte[] keyHash)
    {
        if (!remembered.TryGet(keyHash, out var known))
        {
            return null;
        }

        metrics.Answered(CacheName, CacheTier.Memory);
        return known;
    }

    private async ValueTask<ActiveApiKey?> LookUpAsync(byte[] keyHash, CancellationToken cancellationToken)
    {
        var lookup = remembered.Begin();
        var key = await cache.GetOrCreateSharingOnlyFoundAsync(
            CacheName, CacheKey(keyHash), keyHash, LoadAsync, EntryOptions, UnknownKeyLifetime, cancellationToken);
        if (key is not null)
        {
            remembered.Remember(keyHash, key, lookup);
        }

        return key;
    }

    /// <summary>
    /// Removes a revoked key from Redis and, if <paramref name="announce"/>, announces the revocation: a lookup from
    /// then on finds it removed, so what an instance remembers afterwards is true. A lookup racing with the revocation
    /// may write the old answer back, which is why it is done twice.
    /// </summary>
    private async Task ForgetEverywhereAsync(byte[] keyHash, bool announce, CancellationToken cancellationToken)
    {
        try
        {
            await cache.RemoveAsync(CacheKey(keyHash), cancellationToken);
        }
        finally
        {
            // Announced even if the removal failed: instances then look the key up again, which is no worse than
            // what their memory tier alone would do.
            if (announce)
            {
                await watch.AnnounceAsync(keyHash);
            }
        }
    }

    private static string CacheKey(byte[] keyHash) => "api-key:" + Convert.ToHexStringLower(keyHash);

    private async ValueTask<ActiveApiKey?> LoadAsync(byte[] keyHash, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<TrackerDbContext>();
        return await db.ApiKeys.AsNoTracking()
            .Where(key => key.KeyHash == keyHash && key.RevokedAt == null)
            .Select(key => new ActiveApiKey(key.Id, key.ClientId))
            .FirstOrDefaultAsync(cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Removed {Count} recently revoked API key(s) from Redis after it came back")]
    private partial void LogRevokedForgotten(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The delayed second cache invalidation of a revoked API key failed; the key expires from the cache by itself, and from what instances remember within 30 s")]
    private partial void LogSecondInvalidationFailed(Exception exception);
}
