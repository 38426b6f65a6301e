using Tracker.AppHost.Infrastructure;

var builder = DistributedApplication.CreateBuilder(args);

var infrastructure = TrackerInfrastructure.TryAdd(builder, out var problem);
if (infrastructure is null)
{
    await Console.Error.WriteLineAsync(problem);
    return 1;
}

// At least 64 alphanumeric characters (over 256 bits), generated once and kept in the AppHost's user secrets.
var jwtSigningKey = builder.AddParameter(
    "jwt-signing-key", new GenerateParameterDefault { MinLength = 64, Special = false }, secret: true, persist: true);

var migrations = builder.AddProject<Projects.Tracker_MigrationService>(ResourceNames.Migrations)
    .WithReference(infrastructure.Database)
    .WaitFor(infrastructure.Servers);

builder.AddProject<Projects.Tracker_ApiService>(ResourceNames.Api)
    .WithReference(infrastructure.Database)
    .WithReference(infrastructure.Cache)
    .WaitFor(infrastructure.Servers)
    .WaitForCompletion(migrations)
    .WithEnvironment("Jwt__SigningKey", jwtSigningKey)
    .WithHttpEndpoint()
    .WithExternalHttpEndpoints()
    .WithHttpHealthCheck("/health");

await builder.Build().RunAsync();
return 0;
