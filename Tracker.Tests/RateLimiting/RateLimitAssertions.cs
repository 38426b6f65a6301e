using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using Tracker.ApiService.RateLimiting;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.RateLimiting;

/// <summary>What the rate-limiting tests read of an answer and of Redis.</summary>
internal static class RateLimitAssertions
{
    /// <summary>The one value of header <paramref name="name"/>; fails when it is missing.</summary>
    public static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? Assert.Single(values) : throw new Xunit.Sdk.XunitException($"No {name} header.");

    /// <summary>The ingest buckets in Redis of <paramref name="factory"/>'s instances (each test has a key prefix of its own).</summary>
    public static async Task<RedisKey[]> IngestBucketsAsync(ConnectionMultiplexer redis, TrackerApiFactory factory)
    {
        var prefix = factory.Services.GetRequiredService<IOptions<RateLimitingOptions>>().Value.KeyPrefix + "ingest:";
        return [.. await redis.GetServers().Single().KeysAsync(pattern: prefix + "*").ToArrayAsync()];
    }
}
