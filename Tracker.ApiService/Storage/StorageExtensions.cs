using Tracker.Data;

namespace Tracker.ApiService.Storage;

/// <summary>
/// PostgreSQL (EF Core, pooled) and Redis, through the Aspire client integrations: connection strings
/// <c>trackerdb</c> and <c>cache</c>, with their health checks (they make <c>/health</c> a readiness probe),
/// retries, traces and metrics.
/// </summary>
public static class StorageExtensions
{
    public const string DatabaseConnectionName = "trackerdb";
    public const string CacheConnectionName = "cache";

    public static IHostApplicationBuilder AddTrackerStorage(this IHostApplicationBuilder builder)
    {
        builder.AddNpgsqlDbContext<TrackerDbContext>(
            DatabaseConnectionName, configureDbContextOptions: TrackerDbContext.ConfigureConventions);
        builder.AddRedisClient(CacheConnectionName);
        return builder;
    }
}
