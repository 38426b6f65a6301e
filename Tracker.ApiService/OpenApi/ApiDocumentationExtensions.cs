using Scalar.AspNetCore;

namespace Tracker.ApiService.OpenApi;

/// <summary>
/// The OpenAPI document at <c>/openapi/v1.json</c> and the interactive docs page at <c>/api</c>, where the API's
/// root (<c>/</c>) leads.
/// </summary>
public static class ApiDocumentationExtensions
{
    public const string DocumentName = "v1";

    public static IHostApplicationBuilder AddApiDocumentation(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOpenApi(DocumentName, options =>
        {
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info.Title = "Tracker API";
                document.Info.Version = "v1";
                document.Info.Description =
                    "Records who calls your APIs and reports usage. Clients register, get API keys, send activity logs "
                    + "(a 201 means the log is committed) and read daily and top-client usage.";
                return Task.CompletedTask;
            });
            options.AddDocumentTransformer(SecuritySchemeTransformers.AddSchemes);
            options.AddOperationTransformer(SecuritySchemeTransformers.MarkOperation);
        });
        return builder;
    }

    public static WebApplication MapApiDocumentation(this WebApplication app)
    {
        app.MapOpenApi();

        // Scalar serves its own bundled script from /api/scalar.js: no CDN, so the page works offline and
        // no third party sees who reads the docs. Its telemetry and web fonts are off for the same reason.
        app.MapScalarApiReference(Http.SecurityHeadersMiddleware.DocsPathPrefix, options =>
        {
            options.Title = "Tracker API";
            options.DefaultFonts = false;
            options.Telemetry = false;
        });

        // Whoever opens the API's own address (a browser, the dashboard's link) lands on its reference, not a 404.
        app.MapGet("/", () => TypedResults.Redirect(Http.SecurityHeadersMiddleware.DocsPathPrefix + "/")).ExcludeFromDescription();
        return app;
    }
}
