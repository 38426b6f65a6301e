using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.Usage;

/// <summary><c>tracker.cache.lookups</c> counts each lookup with the <c>tier</c> that answered it.</summary>
[Collection(nameof(RealServers))]
public sealed class CacheTierTelemetryTests(ServersFixture servers) : ApiTest(servers)
{
    [Fact]
    public async Task Cache_lookups_are_counted_by_the_tier_that_answered_database_then_memory_and_redis_on_another_instance()
    {
        await UsageClient.AvoidDayBoundaryAsync();
        await using var sibling = Factory.CreateSibling();
        using var siblingHttp = sibling.CreateClient();
        var token = await Http.LoginTokenAsync(await Http.RegisterNewAsync());
        using var first = new MetricRecorder(Factory, "tracker.cache.lookups");
        using var second = new MetricRecorder(sibling, "tracker.cache.lookups");

        await Http.DailyAsync(token, days: 7);
        await Http.DailyAsync(token, days: 7);
        await siblingHttp.DailyAsync(token, days: 7);

        Assert.Equal(["database", "memory"], Tiers(first));
        Assert.Equal(["redis"], Tiers(second));
    }

    private static string[] Tiers(MetricRecorder metrics) =>
        [.. metrics.Of("tracker.cache.lookups", ("cache", "usage-daily")).Select(measurement => measurement.Tags["tier"] ?? "")];
}
