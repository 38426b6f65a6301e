using System.ComponentModel;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Hybrid;
using Tracker.ApiService.Caching;
using Tracker.Data;

namespace Tracker.ApiService.Auth;

/// <summary>
/// Answers "does this client exist?" for every JWT-authenticated request from the hybrid cache, so a valid
/// token costs no database round trip. Clients are never deleted, so a "yes" stays true; a "no" is kept only
/// briefly, in case the client is being created right now.
/// </summary>
public sealed class ClientDirectory(TieredCache cache, IServiceScopeFactory scopes)
{
    private static readonly HybridCacheEntryOptions Known = new()
    {
        Expiration = TimeSpan.FromHours(1),
        LocalCacheExpiration = TimeSpan.FromMinutes(10),
    };

    private static readonly HybridCacheEntryOptions Unknown = new()
    {
        Expiration = TimeSpan.FromSeconds(10),
        LocalCacheExpiration = TimeSpan.FromSeconds(10),
    };

    public async ValueTask<bool> ExistsAsync(Guid clientId, CancellationToken cancellationToken)
    {
        var key = CacheKey(clientId);
        var presence = await cache.GetOrCreateAsync("client", key, clientId, LoadAsync, Known, cancellationToken);
        if (!presence.Exists)
        {
            // Replace the long-lived entry with a short one: a forged subject must not pin a "no" for an hour.
            await cache.SetAsync(key, presence, Unknown, cancellationToken);
        }

        return presence.Exists;
    }

    /// <summary>Where the answer for <paramref name="clientId"/> is cached.</summary>
    internal static string CacheKey(Guid clientId) => $"client-exists:{clientId:N}";

    private async ValueTask<ClientPresence> LoadAsync(Guid clientId, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<TrackerDbContext>();
        return new ClientPresence(await db.Clients.AnyAsync(client => client.Id == clientId, cancellationToken));
    }

    /// <summary>The cached answer: a class, so the cache can tell a memory hit from a miss; immutable, so a memory
    /// hit shares one instance instead of deserializing a copy.</summary>
    [ImmutableObject(true)]
    private sealed record ClientPresence(bool Exists);
}
