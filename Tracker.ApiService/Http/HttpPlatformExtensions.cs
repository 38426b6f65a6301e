using Microsoft.AspNetCore.HttpOverrides;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Tracker.ApiService.Http;

/// <summary>
/// What every endpoint shares: ProblemDetails for every error, strict JSON, request size limits and security
/// headers. Capabilities add routes; they never repeat any of this.
/// </summary>
public static class HttpPlatformExtensions
{
    public static IHostApplicationBuilder AddHttpPlatform(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;

        services.AddOptions<RequestLimitsOptions>()
            .BindConfiguration(RequestLimitsOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddOptions<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>()
            .Configure<IOptions<RequestLimitsOptions>>((kestrel, limits) =>
                kestrel.Limits.MaxRequestBodySize = limits.Value.MaxRequestBodyBytes);

        services.AddOptions<TrustedProxiesOptions>()
            .BindConfiguration(TrustedProxiesOptions.SectionName)
            .Validate(options => options.TryParse(out _, out _), "ForwardedHeaders:TrustedProxies holds an entry that is neither an IP address nor a network (10.0.0.0/16).")
            .Validate(options => !(options.TrustAllProxies && options.TrustedProxies.Count > 0),
                "ForwardedHeaders:TrustAllProxies and ForwardedHeaders:TrustedProxies exclude each other: trusting every proxy makes the list meaningless.")
            .ValidateOnStart();
        services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<TrustedProxiesOptions>>((forwarded, trusted) =>
        {
            forwarded.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
            // One hop: the entry the proxy appended. Any entry before it was written by the caller, who could then
            // choose its own rate-limit bucket.
            forwarded.ForwardLimit = 1;
            // The framework trusts loopback by default; here only what is configured is trusted (with both lists
            // empty, as for TrustAllProxies, the middleware believes any peer).
            forwarded.KnownProxies.Clear();
            forwarded.KnownIPNetworks.Clear();
            if (!trusted.Value.TrustAllProxies && trusted.Value.TryParse(out var networks, out _))
            {
                foreach (var network in networks)
                {
                    forwarded.KnownIPNetworks.Add(network);
                }
            }
        });

        services.AddProblemDetails(options => options.CustomizeProblemDetails = ProblemDetailsDefaults.Apply);
        services.AddExceptionHandler<BadRequestExceptionHandler>();
        services.AddExceptionHandler<StorageUnavailableExceptionHandler>();
        services.AddExceptionHandler<UnhandledExceptionHandler>();

        // Minimal APIs answer a body they cannot bind with a bare 400; throwing lets the handler above say why.
        services.Configure<RouteHandlerOptions>(options => options.ThrowOnBadRequest = true);

        services.ConfigureHttpJsonOptions(options => ConfigureStrictJson(options.SerializerOptions));
        return builder;
    }

    /// <summary>
    /// Unknown or repeated properties are errors, not silently dropped or overwritten; numbers must be JSON
    /// numbers. A client with a typo in a field name learns it at once instead of losing data.
    /// </summary>
    public static void ConfigureStrictJson(JsonSerializerOptions options)
    {
        options.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        options.AllowDuplicateProperties = false;
        options.NumberHandling = JsonNumberHandling.Strict;
        options.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.Never;
    }

    public static WebApplication UseHttpPlatform(this WebApplication app)
    {
        // Only with trusted proxies configured: with none, the middleware would believe every sender's header.
        if (app.Services.GetRequiredService<IOptions<TrustedProxiesOptions>>().Value.Enabled)
        {
            app.UseForwardedHeaders();
        }

        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            // A client's malformed request is not a server error: it is answered, not logged as one. Nor is a storage
            // outage, which its handler logs as one line instead of a stack trace per request.
            SuppressDiagnosticsCallback = context => context.Exception is BadHttpRequestException
                || StorageUnavailableExceptionHandler.FindUnavailability(context.Exception) is not null,
        });
        app.UseStatusCodePages();
        app.UseMiddleware<SecurityHeadersMiddleware>();
        app.UseMiddleware<BatchRequestBodyLimitMiddleware>();
        return app;
    }

    /// <summary>
    /// Every ProblemDetails carries a detail sentence and the trace id a support request can quote, and the headers
    /// kept through the exception handler (<see cref="KeptResponseHeaders"/>).
    /// </summary>
    private static class ProblemDetailsDefaults
    {
        public static void Apply(ProblemDetailsContext context)
        {
            var problem = context.ProblemDetails;
            var http = context.HttpContext;
            KeptResponseHeaders.Restore(http);
            problem.Extensions["traceId"] = Activity.Current?.Id ?? http.TraceIdentifier;
            problem.Detail ??= problem.Status switch
            {
                StatusCodes.Status401Unauthorized => "Authentication is required: send valid credentials.",
                StatusCodes.Status403Forbidden => "The credentials are valid but do not allow this request.",
                StatusCodes.Status404NotFound => $"No resource matches {http.Request.Method} {http.Request.Path}.",
                StatusCodes.Status405MethodNotAllowed =>
                    $"{http.Request.Method} is not allowed on {http.Request.Path}.",
                StatusCodes.Status413PayloadTooLarge =>
                    $"The request body is larger than the {MaxBodySize(http)} bytes allowed here.",
                StatusCodes.Status415UnsupportedMediaType => "The request body must be JSON (Content-Type: application/json).",
                _ => null,
            };
        }

        private static string MaxBodySize(HttpContext http) =>
            http.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize?.ToString(System.Globalization.CultureInfo.InvariantCulture)
            ?? "configured number of";
    }
}
