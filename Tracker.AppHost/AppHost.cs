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

var api = builder.AddProject<Projects.Tracker_ApiService>(ResourceNames.Api)
    .WithReference(infrastructure.Database)
    .WithReference(infrastructure.Cache)
    .WaitFor(infrastructure.Servers)
    .WaitForCompletion(migrations)
    .WithEnvironment("Jwt__SigningKey", jwtSigningKey)
    .WithHttpEndpoint()
    .WithExternalHttpEndpoints()
    .WithHttpHealthCheck("/health");

if (builder.ExecutionContext.IsPublishMode)
{
    // Deployed, every request reaches the API through the platform's ingress, whose address is not known in
    // advance: without this, every caller would have the ingress's IP and share one per-IP limit. Only the hop
    // the ingress appends is believed. Run locally, nothing is in front and nothing is trusted.
    api.WithEnvironment("ForwardedHeaders__TrustAllProxies", "true");
}

await builder.Build().RunAsync();
return 0;
