using System.Reflection;
using Microsoft.AspNetCore.Http.Metadata;

namespace Tracker.ApiService.Http;

/// <summary>
/// 200 with a JSON body of <typeparamref name="T"/> serialised beforehand (by the app's JSON options), written as it
/// is. For answers served from a cache many times over: serialising a large answer on every request cost more than
/// everything else such a request does. OpenAPI describes it as <see cref="Microsoft.AspNetCore.Http.HttpResults.Ok{TValue}"/> of <typeparamref name="T"/>.
/// </summary>
public sealed class SerializedOk<T>(ReadOnlyMemory<byte> utf8Json) : IResult, IEndpointMetadataProvider, IStatusCodeHttpResult, IContentTypeHttpResult
{
    // What TypedResults.Ok writes for JSON.
    private const string JsonContentType = "application/json; charset=utf-8";

    public int? StatusCode => StatusCodes.Status200OK;

    public string ContentType => JsonContentType;

    /// <summary>The body: <typeparamref name="T"/>'s JSON in UTF-8.</summary>
    public ReadOnlyMemory<byte> Utf8Json => utf8Json;

    public Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = JsonContentType;
        response.ContentLength = utf8Json.Length;
        return response.Body.WriteAsync(utf8Json, httpContext.RequestAborted).AsTask();
    }

    static void IEndpointMetadataProvider.PopulateMetadata(MethodInfo method, EndpointBuilder builder) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(StatusCodes.Status200OK, typeof(T), ["application/json"]));
}
