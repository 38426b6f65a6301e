using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Options;
using Tracker.ApiService.Caching;
using Tracker.ApiService.Http;

namespace Tracker.ApiService.Usage;

/// <summary>
/// How every usage answer is cached: in the tiered cache, under a key that carries the current generation of the
/// usage it reads (one client's, or everyone's for <c>top</c>), so that a commit makes it obsolete on every instance
/// within the freshness bound (see <see cref="UsageGenerations"/>). Callers put the current UTC day or hour in their
/// keys, so windows move on by themselves, and every parameter of the answer, because what is cached is the answer's
/// response body, serialised once (<see cref="SerializedAnswer"/>): a hit writes it as it is. With
/// <c>Usage:CacheAnswers</c> off, every answer is loaded and serialised afresh.
/// </summary>
public sealed class UsageAnswerCache(
    TieredCache cache, UsageGenerations generations, IOptions<UsageOptions> options, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json)
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

    private readonly JsonSerializerOptions _json = json.Value.SerializerOptions;

    /// <summary>The answer <paramref name="key"/> about <paramref name="clientId"/>'s usage, from the cache or <paramref name="load"/>.</summary>
    /// <param name="cacheName">The kind of answer: the key's prefix and the cache metrics' tag.</param>
    public async ValueTask<SerializedOk<T>> OfClientAsync<TState, T>(
        string cacheName, Guid clientId, string key, TState state, Func<TState, CancellationToken, ValueTask<T>> load,
        CancellationToken cancellationToken)
        where T : class
    {
        var serialized = new SerializingLoad<TState, T>(state, load, TypeInfo<T>(), _cacheAnswers);
        var answer = _cacheAnswers
            ? await cache.GetOrCreateAsync(cacheName, await ClientKeyAsync(cacheName, clientId, key, cancellationToken), serialized,
                static (load, token) => load.RunAsync(token), EntryOptions, cancellationToken)
            : await serialized.RunAsync(cancellationToken);
        return new SerializedOk<T>(answer.Body);
    }

    /// <summary>
    /// As <see cref="OfClientAsync{TState, T}"/>, for an answer that may not exist (null): anyone may ask for those, as
    /// many as they like, so "none" stays in this instance's memory and never reaches the shared tier.
    /// </summary>
    public async ValueTask<SerializedOk<T>?> OfClientIfFoundAsync<TState, T>(
        string cacheName, Guid clientId, string key, TState state, Func<TState, CancellationToken, ValueTask<T?>> load,
        CancellationToken cancellationToken)
        where T : class
    {
        var serialized = new SerializingLoad<TState, T?>(state, load, TypeInfo<T?>(), _cacheAnswers);
        var answer = _cacheAnswers
            ? await cache.GetOrCreateSharingOnlyFoundAsync(cacheName, await ClientKeyAsync(cacheName, clientId, key, cancellationToken), serialized,
                static (load, token) => load.RunIfFoundAsync(token), EntryOptions, AbsentLifetime, cancellationToken)
            : await serialized.RunIfFoundAsync(cancellationToken);
        return answer is null ? null : new SerializedOk<T>(answer.Body);
    }

    /// <summary>The answer <paramref name="key"/> about every client's usage taken together, from the cache or <paramref name="load"/>.</summary>
    public async ValueTask<SerializedOk<T>> OfEveryoneAsync<TState, T>(
        string cacheName, string key, TState state, Func<TState, CancellationToken, ValueTask<T>> load, CancellationToken cancellationToken)
        where T : class
    {
        var serialized = new SerializingLoad<TState, T>(state, load, TypeInfo<T>(), _cacheAnswers);
        var answer = _cacheAnswers
            ? await cache.GetOrCreateAsync(cacheName, $"{cacheName}:{EntryFormat}:{key}:{await generations.OfAllAsync(cancellationToken)}", serialized,
                static (load, token) => load.RunAsync(token), EntryOptions, cancellationToken)
            : await serialized.RunAsync(cancellationToken);
        return new SerializedOk<T>(answer.Body);
    }

    // Entries are response bodies, the large ones gzipped (SerializedAnswer). Their format is in the key so that,
    // during a rolling deploy, an instance never reads an entry an earlier version stored in another format
    // (HybridCache's JSON of the answer object, or bodies never gzipped) as a body, nor the reverse.
    private const string EntryFormat = "body-gz";

    private async ValueTask<string> ClientKeyAsync(string cacheName, Guid clientId, string key, CancellationToken cancellationToken) =>
        $"{cacheName}:{EntryFormat}:{clientId:N}:{key}:{await generations.OfClientAsync(clientId, cancellationToken)}";

    // Exactly what TypedResults.Ok would write: the app's JSON options, the answer's declared type.
    private JsonTypeInfo<T> TypeInfo<T>()
        where T : class? => (JsonTypeInfo<T>)_json.GetTypeInfo(typeof(T));

    // An answer loaded for the cache is gzipped if large, once for all its readers; one loaded for a single request
    // (CacheAnswers off) is not: compressing it would cost more than sending it.
    private sealed class SerializingLoad<TState, T>(
        TState state, Func<TState, CancellationToken, ValueTask<T>> load, JsonTypeInfo<T> typeInfo, bool gzipLarge)
        where T : class?
    {
        public async ValueTask<SerializedAnswer> RunAsync(CancellationToken cancellationToken) =>
            await RunIfFoundAsync(cancellationToken) ?? throw new InvalidOperationException($"The load of a {typeof(T).Name} answered null.");

        public async ValueTask<SerializedAnswer?> RunIfFoundAsync(CancellationToken cancellationToken) =>
            await load(state, cancellationToken) is { } answer ? SerializedAnswer.Of(JsonSerializer.SerializeToUtf8Bytes(answer, typeInfo), gzipLarge) : null;
    }
}
