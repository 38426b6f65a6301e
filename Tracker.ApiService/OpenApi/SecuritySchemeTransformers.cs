using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Tracker.ApiService.ApiKeys;
using Tracker.ApiService.Auth;

namespace Tracker.ApiService.OpenApi;

/// <summary>
/// Declares the two security schemes and marks each operation with the one its authorization policy uses, so
/// the docs page offers the right credential per route and code generators see which routes need which.
/// </summary>
internal static class SecuritySchemeTransformers
{
    private const string BearerSchemeId = "Bearer";
    private const string ApiKeySchemeId = "ApiKey";

    public static Task AddSchemes(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
        document.Components.SecuritySchemes[BearerSchemeId] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            BearerFormat = "JWT",
            Description = "The access token from POST /api/v1/auth/login (HS256, expires after an hour by default).",
        };
        document.Components.SecuritySchemes[ApiKeySchemeId] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey,
            In = ParameterLocation.Header,
            Name = ApiKeyAuthenticationHandler.HeaderName,
            Description = "An API key (ak_...). Also accepted as 'Authorization: Bearer ak_...'.",
        };
        return Task.CompletedTask;
    }

    public static Task MarkOperation(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        var metadata = context.Description.ActionDescriptor.EndpointMetadata;
        if (metadata.OfType<IAllowAnonymous>().Any())
        {
            return Task.CompletedTask;
        }

        var policies = metadata.OfType<IAuthorizeData>().Select(data => data.Policy).ToHashSet();
        var schemeId = policies.Contains(AuthPolicies.Client) ? BearerSchemeId
            : policies.Contains(AuthPolicies.Ingest) ? ApiKeySchemeId
            : null;
        if (schemeId is null)
        {
            return Task.CompletedTask;
        }

        operation.Security =
        [
            new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(schemeId, context.Document)] = [] },
        ];
        operation.Responses ??= [];
        operation.Responses.TryAdd("401", new OpenApiResponse
        {
            Description = "Missing, invalid or expired credentials (ProblemDetails, with WWW-Authenticate).",
        });
        return Task.CompletedTask;
    }
}
