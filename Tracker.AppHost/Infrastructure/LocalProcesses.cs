using Microsoft.Extensions.DependencyInjection;

namespace Tracker.AppHost.Infrastructure;

/// <summary>
/// Runs the machine's PostgreSQL and Redis as executable resources on ports the orchestrator allocates, with
/// readiness checks that really connect, so nothing that waits for them starts before they accept clients.
/// </summary>
internal static class LocalProcesses
{
    public static TrackerInfrastructure Add(
        IDistributedApplicationBuilder builder,
        LocalServerBinaries binaries,
        string dataDirectory,
        IResourceBuilder<ParameterResource> databasePassword,
        IResourceBuilder<ParameterResource> cachePassword)
    {
        var scripts = ScriptsDirectory(builder);
        Directory.CreateDirectory(dataDirectory);

        var postgresServer = new LocalPostgresServerResource(
            ResourceNames.PostgresServer, Path.Combine(scripts, "run-postgres.sh"), dataDirectory, databasePassword.Resource);
        var postgres = builder.AddResource(postgresServer)
            .WithEndpoint(name: LocalPostgresServerResource.EndpointName, scheme: "tcp", env: "PGPORT")
            .WithEnvironment("TRACKER_PG_BIN", binaries.PostgresBinDirectory!)
            .WithEnvironment("TRACKER_PG_DATA", Path.Combine(dataDirectory, "postgres"))
            .WithEnvironment("TRACKER_PG_PASSWORD", databasePassword)
            .WithReadinessCheck(builder, "postgres_ready", (services, connectionString) =>
                services.AddHealthChecks().AddNpgSql(_ => connectionString(), name: "postgres_ready"))
            .ExcludeFromManifest();

        // Aspire mirrors a container's state onto its databases, but not an executable's: here the database, a name
        // on the server, follows its server's state itself.
        var database = builder.AddResource(new LocalPostgresDatabaseResource(ResourceNames.Database, ResourceNames.Database, postgresServer))
            .WithInitialState(new() { ResourceType = "PostgresDatabase", Properties = [], State = KnownResourceStates.NotStarted })
            .WithIconName("Database")
            .OnInitializeResource(FollowServerStateAsync)
            .ExcludeFromManifest();

        var redisServer = new LocalRedisResource(
            ResourceNames.Cache, Path.Combine(scripts, "run-redis.sh"), dataDirectory, cachePassword.Resource);
        var cache = builder.AddResource(redisServer)
            .WithEndpoint(name: LocalRedisResource.EndpointName, scheme: "tcp", env: "TRACKER_REDIS_PORT")
            .WithEnvironment("TRACKER_REDIS_SERVER", binaries.RedisServer!)
            .WithEnvironment("TRACKER_REDIS_DATA", Path.Combine(dataDirectory, "redis"))
            .WithEnvironment("TRACKER_REDIS_PASSWORD", cachePassword)
            .WithReadinessCheck(builder, "cache_ready", (services, connectionString) =>
                services.AddHealthChecks().AddRedis(_ => connectionString(), name: "cache_ready"))
            .ExcludeFromManifest();

        return new TrackerInfrastructure(InfrastructureMode.LocalProcesses, database, cache, [postgres, cache]);
    }

    /// <summary>Where the scripts the AppHost runs live (<c>Infrastructure/scripts</c>, beside the project).</summary>
    public static string ScriptsDirectory(IDistributedApplicationBuilder builder) =>
        Path.Combine(builder.AppHostDirectory, "Infrastructure", "scripts");

    /// <summary>Publishes the server's state, start and stop times as the database's for as long as the AppHost runs.</summary>
    private static async Task FollowServerStateAsync(
        LocalPostgresDatabaseResource database, InitializeResourceEvent initialize, CancellationToken cancellationToken)
    {
        await foreach (var update in initialize.Notifications.WatchAsync(cancellationToken))
        {
            if (update.Resource == database.Parent)
            {
                await initialize.Notifications.PublishUpdateAsync(database, snapshot => snapshot with
                {
                    State = update.Snapshot.State,
                    StartTimeStamp = update.Snapshot.StartTimeStamp,
                    StopTimeStamp = update.Snapshot.StopTimeStamp,
                });
            }
        }
    }

    /// <summary>
    /// Registers a health check that connects with the resource's connection string, known only once the
    /// orchestrator has allocated its port (just before the process starts).
    /// </summary>
    private static IResourceBuilder<T> WithReadinessCheck<T>(
        this IResourceBuilder<T> resource,
        IDistributedApplicationBuilder builder,
        string key,
        Action<IServiceCollection, Func<string>> register)
        where T : ExecutableResource, IResourceWithConnectionString
    {
        string? connectionString = null;
        resource.OnBeforeResourceStarted(async (server, _, cancellationToken) =>
            connectionString = await server.ConnectionStringExpression.GetValueAsync(cancellationToken));
        register(builder.Services, () => connectionString
            ?? throw new InvalidOperationException($"{resource.Resource.Name} has not been started yet."));
        return resource.WithHealthCheck(key);
    }
}
