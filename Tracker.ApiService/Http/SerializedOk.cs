using System.IO.Compression;
using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Net.Http.Headers;

namespace Tracker.ApiService.Http;

/// <summary>
/// 200 with a JSON body of <typeparamref name="T"/> serialised beforehand (by the app's JSON options), written as it
/// is. For answers served from a cache many times over: serialising a large answer on every request cost more than
/// everything else such a request does. A body kept gzipped (<see cref="JsonBody.Gzipped"/>) is sent as it is to a
/// client that accepts gzip, and decompressed for one that does not. OpenAPI describes it as
/// <see cref="Microsoft.AspNetCore.Http.HttpResults.Ok{TValue}"/> of <typeparamref name="T"/>.
/// </summary>
public sealed class SerializedOk<T>(JsonBody body) : IResult, IEndpointMetadataProvider, IStatusCodeHttpResult, IContentTypeHttpResult
{
    // What TypedResults.Ok writes for JSON.
    private const string JsonContentType = "application/json; charset=utf-8";

    public int? StatusCode => StatusCodes.Status200OK;

    public string ContentType => JsonContentType;

    /// <summary>The body: <typeparamref name="T"/>'s JSON in UTF-8, or gzipped.</summary>
    public JsonBody Body => body;

    public Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = JsonContentType;
        var bytes = body.Bytes;
        if (body.Gzipped)
        {
            // The same URL answers in either encoding: a cache on the way must tell them apart by Accept-Encoding.
            response.Headers.Vary = HeaderNames.AcceptEncoding;
            if (!JsonBody.AcceptsGzip(httpContext.Request.Headers.AcceptEncoding))
            {
                response.ContentLength = JsonBody.GzippedLength(bytes.Span);
                return WriteDecompressedAsync(bytes, response, httpContext.RequestAborted);
            }

            response.Headers.ContentEncoding = JsonBody.Gzip;
        }

        response.ContentLength = bytes.Length;
        return response.Body.WriteAsync(bytes, httpContext.RequestAborted).AsTask();
    }

    private static async Task WriteDecompressedAsync(ReadOnlyMemory<byte> gzipped, HttpResponse response, CancellationToken cancellationToken)
    {
        if (!MemoryMarshal.TryGetArray(gzipped, out var segment))
        {
            segment = gzipped.ToArray();
        }

        await using var json = new GZipStream(new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false), CompressionMode.Decompress);
        await json.CopyToAsync(response.Body, cancellationToken);
    }

    static void IEndpointMetadataProvider.PopulateMetadata(MethodInfo method, EndpointBuilder builder) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(StatusCodes.Status200OK, typeof(T), ["application/json"]));
}
