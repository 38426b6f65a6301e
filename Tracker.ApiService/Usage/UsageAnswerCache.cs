using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Options;
using Tracker.ApiService.Caching;

namespace Tracker.ApiService.Usage;

/// <summary>
/// How every usage answer is cached: in the tiered cache, under a key that carries the current generation of the
/// usage it reads (one client's, or everyone's for <c>top</c>), so that a commit makes it obsolete on every instance
/// within the freshness bound (see <see cref="UsageGenerations"/>). Callers put the current UTC day or hour in their
/// keys, so windows move on by themselves. With <c>Usage:CacheAnswers</c> off, every answer is loaded afresh.
/// </summary>
public sealed class UsageAnswerCache(TieredCache cache, UsageGenerations generations, IOptions<UsageOptions> options)
{
    // Entries are never invalidated, only superseded by a newer generation. Redis keeps them a minute: that bounds
    // staleness if an instance dies before publishing its last changes. Memory keeps them ten seconds, because
    // under steady ingest each busy client leaves a trail of superseded entries.
    private static readonly HybridCacheEntryOptions EntryOptions = new()
    {
        Expiration = TimeSpan.FromMinutes(1),
        LocalCacheExpiration = TimeSpan.FromSeconds(10),
    };

    // How long this instance remembers that an answer does not exist (a key that is not the caller's).
    private static readonly TimeSpan AbsentLifetime = TimeSpan.FromSeconds(10);

    private readonly bool _cacheAnswers = options.Value.CacheAnswers;

    /// <summary>The answer <paramref name="key"/> about <paramref name="clientId"/>'s usage, from the cache or <paramref name="load"/>.</summary>
    /// <param name="cacheName">The kind of answer: the key's prefix and the cache metrics' tag.</param>
    public async ValueTask<T> OfClientAsync<TState, T>(
        string cacheName, Guid clientId, string key, TState state, Func<TState, CancellationToken, ValueTask<T>> load,
        CancellationToken cancellationToken)
        where T : class =>
        _cacheAnswers
            ? await cache.GetOrCreateAsync(cacheName, await ClientKeyAsync(cacheName, clientId, key, cancellationToken), state, load,
                EntryOptions, cancellationToken)
            : await load(state, cancellationToken);

    /// <summary>
    /// As <see cref="OfClientAsync{TState, T}"/>, for an answer that may not exist (null): anyone may ask for those, as
    /// many as they like, so "none" stays in this instance's memory and never reaches the shared tier.
    /// </summary>
    public async ValueTask<T?> OfClientIfFoundAsync<TState, T>(
        string cacheName, Guid clientId, string key, TState state, Func<TState, CancellationToken, ValueTask<T?>> load,
        CancellationToken cancellationToken)
        where T : class =>
        _cacheAnswers
            ? await cache.GetOrCreateSharingOnlyFoundAsync(cacheName, await ClientKeyAsync(cacheName, clientId, key, cancellationToken), state,
                load, EntryOptions, AbsentLifetime, cancellationToken)
            : await load(state, cancellationToken);

    /// <summary>The answer <paramref name="key"/> about every client's usage taken together, from the cache or <paramref name="load"/>.</summary>
    public async ValueTask<T> OfEveryoneAsync<TState, T>(
        string cacheName, string key, TState state, Func<TState, CancellationToken, ValueTask<T>> load, CancellationToken cancellationToken)
        where T : class =>
        _cacheAnswers
            ? await cache.GetOrCreateAsync(cacheName, $"{cacheName}:{key}:{await generations.OfAllAsync(cancellationToken)}", state, load,
                EntryOptions, cancellationToken)
            : await load(state, cancellationToken);

    private async ValueTask<string> ClientKeyAsync(string cacheName, Guid clientId, string key, CancellationToken cancellationToken) =>
        $"{cacheName}:{clientId:N}:{key}:{await generations.OfClientAsync(clientId, cancellationToken)}";
}
