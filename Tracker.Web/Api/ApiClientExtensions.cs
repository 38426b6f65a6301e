using System.Net;
using Microsoft.Extensions.Http.Resilience;
using Polly.Timeout;
using Tracker.Web.Api;

namespace Microsoft.Extensions.Hosting;

public static class ApiClientExtensions
{
    /// <summary>The resource name the AppHost gives the API; service discovery resolves it.</summary>
    private const string ApiBaseAddress = "https+http://api";

    /// <summary>
    /// Registers <see cref="TrackerApiClient"/>. Unlike the default resilience, a sign-in, a registration or a key
    /// change is never sent twice, and a 429 or 503 is not retried here: its wait is shown to the person instead.
    /// </summary>
    public static IHostApplicationBuilder AddTrackerApiClient(this IHostApplicationBuilder builder)
    {
        // The service defaults' handler is replaced, not stacked under this one. (Marked experimental, but it is the
        // documented way to give one client its own resilience.)
#pragma warning disable EXTEXP0001
        builder.Services.AddHttpClient<TrackerApiClient>(client => client.BaseAddress = new Uri(ApiBaseAddress))
            // The API keeps its large answers gzipped and sends them so to a client that accepts gzip; to any other
            // it decompresses them on every request.
            .ConfigurePrimaryHttpMessageHandler((handler, _) =>
            {
                switch (handler)
                {
                    case SocketsHttpHandler sockets:
                        sockets.AutomaticDecompression = DecompressionMethods.GZip;
                        break;
                    case HttpClientHandler client:
                        client.AutomaticDecompression = DecompressionMethods.GZip;
                        break;
                }
            })
            .RemoveAllResilienceHandlers()
#pragma warning restore EXTEXP0001
            .AddStandardResilienceHandler(options =>
            {
                options.Retry.MaxRetryAttempts = 2;
                options.Retry.ShouldHandle = static arguments => ValueTask.FromResult(
                    arguments.Outcome.Exception is HttpRequestException or TimeoutRejectedException
                    || arguments.Outcome.Result?.StatusCode is HttpStatusCode.BadGateway or HttpStatusCode.GatewayTimeout);
                options.Retry.DisableForUnsafeHttpMethods();
            });
        return builder;
    }
}
