// The HTTP ceiling of this machine for bench/run.sh: Kestrel answering POST /api/v1/logs with the same JSON
// parsing and 201 envelope as Tracker, and nothing else — no authentication, no database. Tracker's figures
// are also reported as a fraction of this one, which holds better across machines than absolute numbers.
using Baseline;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.Services.ConfigureHttpJsonOptions(options => options.SerializerOptions.TypeInfoResolverChain.Insert(0, BaselineJsonContext.Default));
var app = builder.Build();
app.MapPost("/api/v1/logs", (LogRequest log) => TypedResults.Created((string?)null, new Envelope("Log created successfully", null)));
app.Run();

namespace Baseline
{
    internal sealed record LogRequest(string? IpAddress, string? Endpoint, string? Method, long? Timestamp);

    internal sealed record Envelope(string Message, object? Data);

    [System.Text.Json.Serialization.JsonSerializable(typeof(LogRequest))]
    [System.Text.Json.Serialization.JsonSerializable(typeof(Envelope))]
    [System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
    internal sealed partial class BaselineJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
}
