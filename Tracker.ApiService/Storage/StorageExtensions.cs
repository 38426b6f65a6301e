using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Npgsql;
using StackExchange.Redis;
using Tracker.Data;

namespace Tracker.ApiService.Storage;

/// <summary>
/// PostgreSQL (EF Core, pooled) and Redis, through the Aspire client integrations: connection strings
/// <c>trackerdb</c> and <c>cache</c>, with traces and metrics, bounded waits (no retries inside a request, a 5 s
/// connect timeout, <see cref="PostgresSessionSettings"/>), and a readiness check of each (they make
/// <c>/health</c> a readiness probe; see <see cref="PostgresReadinessCheck"/> and <see cref="RedisReadinessCheck"/>
/// for why they are not the integrations' own).
/// </summary>
public static class StorageExtensions
{
    public const string DatabaseConnectionName = "trackerdb";
    public const string CacheConnectionName = "cache";

    /// <summary>Seconds to wait for a PostgreSQL connection when the connection string does not say.</summary>
    public const int ConnectTimeoutSeconds = 5;

    private const int DefaultConnectTimeoutSeconds = 15;

    public static IHostApplicationBuilder AddTrackerStorage(this IHostApplicationBuilder builder)
    {
        // One connection pool for both EF Core and the raw Npgsql paths (COPY on ingest): the data source is
        // registered by the Aspire integration, the DbContext is built on it and enriched with telemetry.
        builder.AddNpgsqlDataSource(DatabaseConnectionName, settings => settings.DisableHealthChecks = true,
            dataSource => ConfigureConnections(dataSource.ConnectionStringBuilder));
        builder.Services.AddDbContextPool<TrackerDbContext>((services, options) =>
        {
            options.UseNpgsql(services.GetRequiredService<NpgsqlDataSource>());
            TrackerDbContext.ConfigureConventions(options);
        });
        builder.EnrichNpgsqlDbContext<TrackerDbContext>(settings =>
        {
            settings.DisableHealthChecks = true;
            // Every user of this context is a request or a best-effort background write, and no request may wait out
            // a retry policy: with PostgreSQL down, the integration's retried for 58 s and then answered 500. A
            // failure now surfaces at once and is answered 503 (Http/StorageUnavailableExceptionHandler).
            settings.DisableRetry = true;
        });
        // Redis commands are not traced unless Aspire:StackExchange:Redis:DisableTracing is set to false: the
        // instrumentation keeps a profiling session per traced request, and with a rate-limit decision in every
        // request that cost ~25% of ingest throughput and grew the API's memory from ~210 to over 400 MB.
        var traceRedis = builder.Configuration.GetValue<bool?>("Aspire:StackExchange:Redis:DisableTracing") == false;
        builder.AddRedisClient(CacheConnectionName, settings =>
        {
            settings.DisableHealthChecks = true;
            settings.DisableTracing = !traceRedis;
        }, options =>
        {
            // While Redis is down, commands fail at once instead of queueing until a timeout: every caller has a
            // fallback (memory cache tier, in-process rate limits), and a request must not wait seconds to use it.
            options.BacklogPolicy = BacklogPolicy.FailFast;
            options.AbortOnConnectFail = false;
        });
        builder.Services.AddSingleton<RedisAvailability>();
        // Singletons, so probes share one check in flight (SharedReadinessProbe).
        builder.Services.AddSingleton<PostgresReadinessCheck>();
        builder.Services.AddSingleton<RedisReadinessCheck>();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddHealthChecks()
            .AddCheck<PostgresReadinessCheck>(DatabaseConnectionName)
            .AddCheck<RedisReadinessCheck>(CacheConnectionName);
        builder.Services.AddHostedService<RedisConnectionWarmup>();
        return builder;
    }

    /// <summary>
    /// A data source of its own on Tracker's database, of at most <paramref name="maxConnections"/> connections and
    /// otherwise as the shared one: for a loop whose statements should keep meeting the same few PostgreSQL backends.
    /// In the shared pool, idle connections are handed out oldest first, so once a burst has grown it (a cold start's
    /// key lookups grew it to 63 connections in the benchmark), a loop of one commit at a time meets a different backend
    /// every time, one whose caches its last statement left long ago, and the pool never shrinks, as none of its
    /// connections is ever idle for long. That cost the log writer's commits half again as much of PostgreSQL's CPU
    /// (runs 122-128, docs/performance.md).
    /// </summary>
    public static NpgsqlDataSource CreateDedicatedDataSource(IConfiguration configuration, ILoggerFactory loggerFactory, int maxConnections)
    {
        // Where the Aspire integration reads the shared one's, in its order: the named connection string, else its
        // section for this connection, else its section for all.
        var connectionString = new NpgsqlConnectionStringBuilder(configuration.GetConnectionString(DatabaseConnectionName)
            ?? configuration[$"Aspire:Npgsql:{DatabaseConnectionName}:ConnectionString"]
            ?? configuration["Aspire:Npgsql:ConnectionString"]
            ?? throw new InvalidOperationException($"The connection string '{DatabaseConnectionName}' is not set."));
        ConfigureConnections(connectionString);
        connectionString.MaxPoolSize = maxConnections;
        connectionString.MinPoolSize = Math.Min(connectionString.MinPoolSize, maxConnections);
        return new NpgsqlDataSourceBuilder(connectionString.ConnectionString).UseLoggerFactory(loggerFactory).Build();
    }

    private static void ConfigureConnections(NpgsqlConnectionStringBuilder connectionString)
    {
        // The same few statements run thousands of times a second (rollup upsert, analytics, key lookups):
        // prepared once per connection, PostgreSQL stops planning them each time (~0.6 ms for daily usage).
        if (connectionString.MaxAutoPrepare == 0)
        {
            connectionString.MaxAutoPrepare = 64;
        }

        // A request waiting on a connection (to open, or from a busy pool) answers 503 after this, not after
        // Npgsql's 15 s; a value set in the connection string is kept.
        if (connectionString.Timeout == DefaultConnectTimeoutSeconds)
        {
            connectionString.Timeout = ConnectTimeoutSeconds;
        }

        PostgresSessionSettings.Apply(connectionString);
    }
}
