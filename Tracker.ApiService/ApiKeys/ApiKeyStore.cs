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
/// most <see cref="LocalLifetime"/>, after which the instance reads Redis again, where revocation removed it.
/// </summary>
public sealed partial class ApiKeyStore(
    TieredCache cache, IServiceScopeFactory scopes, IHostApplicationLifetime lifetime, ILogger<ApiKeyStore> logger)
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
        cache.GetOrCreateSharingOnlyFoundAsync(CacheName, CacheKey(keyHash), keyHash, LoadAsync, EntryOptions, UnknownKeyLifetime, cancellationToken);

    /// <summary>The active key for <paramref name="keyHash"/> if a cache tier knows it; never asks the database.</summary>
    public ValueTask<ActiveApiKey?> FindCachedActiveAsync(byte[] keyHash, CancellationToken cancellationToken) =>
        cache.GetCachedAsync<ActiveApiKey>(CacheName, CacheKey(keyHash), EntryOptions, cancellationToken);

    /// <summary>Forgets what is cached for a key, in Redis and in this instance's memory; call after revoking it.</summary>
    public async Task InvalidateAsync(byte[] keyHash, CancellationToken cancellationToken)
    {
        var key = CacheKey(keyHash);
        try
        {
            await cache.RemoveAsync(key, cancellationToken);
        }
        catch (Exception exception) when (RedisAvailability.IsCommandFailure(exception))
        {
            // The revocation is committed; while Redis is down no instance reads the Redis tier, and the second
            // removal below tries again.
        }

        var stopping = lifetime.ApplicationStopping;
        _ = Task.Run(async () =>
        {
            try
            {
                await Task.Delay(SecondInvalidationDelay, stopping);
                await cache.RemoveAsync(key, stopping);
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

        LogRevokedForgotten(revoked.Count);
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "The delayed second cache invalidation of a revoked API key failed; the key expires from the cache by itself")]
    private partial void LogSecondInvalidationFailed(Exception exception);
}
