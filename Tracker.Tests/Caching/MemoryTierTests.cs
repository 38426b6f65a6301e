using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.DependencyInjection;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.Caching;

/// <summary>The hybrid cache's memory tier holds at most <c>Caching:LocalCacheMegabytes</c> of cached answers.</summary>
[Collection(nameof(RealServers))]
public sealed class MemoryTierTests(ServersFixture servers)
    : ApiTest(servers, new Dictionary<string, string?> { ["Caching:LocalCacheMegabytes"] = "1" })
{
    [Fact]
    public async Task The_memory_tier_keeps_at_most_its_megabytes_and_what_it_drops_is_answered_from_redis()
    {
        var cache = Factory.Services.GetRequiredService<HybridCache>();
        var memory = (MemoryCache)Factory.Services.GetRequiredService<IMemoryCache>();
        var prefix = $"memory-tier-test:{Guid.NewGuid():N}:";

        // 5 MB of answers of 100 kB each, five times what the tier may hold.
        for (var index = 0; index < 50; index++)
        {
            var payload = new string((char)('a' + index % 26), 100_000);
            await cache.GetOrCreateAsync(prefix + index, _ => ValueTask.FromResult(payload));
        }

        // An entry that would pass the limit is not kept in memory: ten of 100 kB fit in 1 MiB.
        Assert.InRange(memory.Count, 0, 10);

        // What memory dropped is still cached: Redis answers it, and nothing is computed again.
        for (var index = 0; index < 50; index++)
        {
            var answer = await cache.GetOrCreateAsync(prefix + index, _ => ValueTask.FromResult("computed again"));
            Assert.Equal(new string((char)('a' + index % 26), 100_000), answer);
        }
    }
}
