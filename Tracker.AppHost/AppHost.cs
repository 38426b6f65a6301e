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

// Instances share nothing but PostgreSQL and Redis, so the API scales out as replicas behind Aspire's proxy, each
// its own process in the dashboard (deployed, Container Apps' scale rule decides; see docs/scaling.md).
const string ApiReplicasSetting = "Tracker:ApiReplicas";
var apiReplicas = 1;
if (builder.Configuration[ApiReplicasSetting] is { } configuredReplicas
    && (!int.TryParse(configuredReplicas, System.Globalization.CultureInfo.InvariantCulture, out apiReplicas) || apiReplicas < 1))
{
    await Console.Error.WriteLineAsync($"{ApiReplicasSetting} must be a whole number of at least 1, not '{configuredReplicas}'.");
    return 1;
}

var api = builder.AddProject<Projects.Tracker_ApiService>(ResourceNames.Api)
    .WithReplicas(apiReplicas)
    .WithReference(infrastructure.Database)
    .WithReference(infrastructure.Cache)
    .WaitFor(infrastructure.Servers)
    .WaitForCompletion(migrations)
    .WithEnvironment("Jwt__SigningKey", jwtSigningKey)
    // Two malloc arenas, not glibc's eight per core: each kept the native memory freed in it (zlib's for the gzipped
    // answers among it), and the API's peak RSS was 12-87 MB lower with two in every row measured, 36-76 MB in the
    // reads after a flood, throughput unchanged (docs/performance.md, bench runs 113-114). glibc reads it only at the
    // process's start: set by the program itself (mallopt), it came after the runtime's threads had made six arenas
    // and saved nothing (run 115).
    .WithEnvironment("MALLOC_ARENA_MAX", "2")
    .WithHttpEndpoint()
    .WithExternalHttpEndpoints()
    .WithHttpHealthCheck("/health")
    .WithUrlForEndpoint("http", url =>
    {
        url.Url = "/api";
        url.DisplayText = "API reference";
    })
    .WithUrls(context => context.Urls.Add(
        new() { Url = "/openapi/v1.json", DisplayText = "OpenAPI document", Endpoint = context.GetEndpoint("http") }));

// The web front end calls the API by service discovery and keeps its data-protection keys (cookies,
// antiforgery) in the same Redis, so its replicas share them.
var web = builder.AddProject<Projects.Tracker_Web>(ResourceNames.Web)
    .WithReference(api)
    .WithReference(infrastructure.Cache)
    .WaitFor(api)
    .WithHttpEndpoint()
    .WithExternalHttpEndpoints()
    .WithHttpHealthCheck("/health")
    .WithUrlForEndpoint("http", url =>
    {
        url.Url = "/usage";
        url.DisplayText = "Usage";
    });

// Run locally, everything speaks plain HTTP or TCP on loopback; deployed, the platform's ingress terminates TLS.
// Nothing needs the development certificate, so a machine without a trusted one gets no dashboard warning.
#pragma warning disable ASPIRECERTIFICATES001 // Experimental in Aspire 13.6, and the one supported way to say it.
foreach (var project in builder.Resources.OfType<ProjectResource>().ToList())
{
    builder.CreateResourceBuilder(project).WithoutHttpsCertificate();
}

foreach (var container in builder.Resources.OfType<ContainerResource>().ToList())
{
    builder.CreateResourceBuilder(container).WithoutHttpsCertificate();
}
#pragma warning restore ASPIRECERTIFICATES001

if (builder.ExecutionContext.IsPublishMode)
{
    // Deployed, every request reaches the API through the platform's ingress, whose address is not known in
    // advance: without this, every caller would have the ingress's IP and share one per-IP limit. Only the hop
    // the ingress appends is believed. Run locally, nothing is in front and nothing is trusted.
    api.WithEnvironment("ForwardedHeaders__TrustAllProxies", "true");
    // The web front end sits behind the same ingress, which terminates TLS: it must see the original scheme to
    // issue its cookies as Secure and build its links with https.
    web.WithEnvironment("ASPNETCORE_FORWARDEDHEADERS_ENABLED", "true");
}

await builder.Build().RunAsync();
return 0;
