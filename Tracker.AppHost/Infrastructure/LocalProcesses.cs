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
        var scripts = Path.Combine(builder.AppHostDirectory, "Infrastructure", "scripts");
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
        var database = builder.AddResource(new LocalPostgresDatabaseResource(ResourceNames.Database, ResourceNames.Database, postgresServer))
            .WithParentRelationship(postgres)
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
