using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Tracker.ApiService.Http;

/// <summary>Endpoint metadata: this endpoint takes many items in one body and gets the larger batch body limit.</summary>
public sealed class BatchRequestBodyLimit;

/// <summary>
/// Raises the body limit for endpoints marked <see cref="BatchRequestBodyLimit"/> to
/// <see cref="RequestLimitsOptions.MaxBatchRequestBodyBytes"/>, before the body is read. The framework's own
/// per-endpoint limit takes a constant; this one follows configuration.
/// </summary>
internal sealed class BatchRequestBodyLimitMiddleware(RequestDelegate next, IOptions<RequestLimitsOptions> limits)
{
    public Task InvokeAsync(HttpContext context)
    {
        if (context.GetEndpoint()?.Metadata.GetMetadata<BatchRequestBodyLimit>() is not null
            && context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodySize)
        {
            bodySize.MaxRequestBodySize = limits.Value.MaxBatchRequestBodyBytes;
        }

        return next(context);
    }
}
