using Tracker.ApiService.ApiKeys;
using Tracker.ApiService.Auth;
using Tracker.ApiService.Caching;
using Tracker.ApiService.Http;
using Tracker.ApiService.Ingest;
using Tracker.ApiService.OpenApi;
using Tracker.ApiService.RateLimiting;
using Tracker.ApiService.Storage;
using Tracker.ApiService.Usage;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddHttpPlatform();
builder.AddApiDocumentation();
builder.AddTrackerStorage();
builder.AddTrackerCaching();
builder.AddTrackerAuthentication();
builder.AddApiKeys();
builder.AddTrackerRateLimiting();
builder.AddUsageAnalytics();
builder.AddIngest();

var app = builder.Build();

app.UseHttpPlatform();
app.UseAuthentication();
app.UseAuthorization();
app.UseTrackerRateLimiting();

app.MapDefaultEndpoints();
app.MapApiDocumentation();
app.MapAuthApi();
app.MapApiKeysApi();
app.MapIngestApi();
app.MapUsageApi();

app.Run();

namespace Tracker.ApiService
{
    /// <summary>
    /// Names the API's entry assembly for <c>WebApplicationFactory</c>: a test project that also references the
    /// AppHost sees two top-level <c>Program</c> types, so it cannot use <c>Program</c> itself.
    /// </summary>
    public sealed class ApiAssemblyMarker;
}
