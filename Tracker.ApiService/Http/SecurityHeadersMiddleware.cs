namespace Tracker.ApiService.Http;

/// <summary>
/// Adds the security headers to every response, errors included. They are set when the response starts, so
/// the exception handler clearing the headers of a failed response cannot drop them.
/// </summary>
internal sealed class SecurityHeadersMiddleware(RequestDelegate next)
{
    /// <summary>The interactive docs page needs its own script and styles; everything else is pure JSON.</summary>
    public const string DocsPathPrefix = "/api";

    private const string JsonContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'";

    // The docs page runs Scalar's bundled script and inline configuration, served by this app itself.
    private const string DocsContentSecurityPolicy =
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        + "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'self'";

    public Task InvokeAsync(HttpContext context)
    {
        context.Response.OnStarting(static state =>
        {
            var http = (HttpContext)state;
            var headers = http.Response.Headers;
            headers.XContentTypeOptions = "nosniff";
            headers["Referrer-Policy"] = "no-referrer";
            headers["Cross-Origin-Opener-Policy"] = "same-origin";
            if (IsDocsPage(http.Request.Path))
            {
                headers.ContentSecurityPolicy = DocsContentSecurityPolicy;
            }
            else
            {
                headers.XFrameOptions = "DENY";
                headers.ContentSecurityPolicy = JsonContentSecurityPolicy;
            }

            return Task.CompletedTask;
        }, context);
        return next(context);
    }

    // The docs page is /api, its assets and the page of one document (/api/v1); routes below /api/v1/ are the API.
    // Spans, not PathString.StartsWithSegments with its remainder, which allocated two strings for every request.
    internal static bool IsDocsPage(PathString path)
    {
        var rest = path.Value.AsSpan();
        return StartsWithSegment(ref rest, DocsPathPrefix) && (!StartsWithSegment(ref rest, "/v1") || rest is "" or "/");
    }

    /// <summary>Whether <paramref name="path"/> begins with the whole segment(s) <paramref name="segments"/> (any case);
    /// if so, leaves in it what follows them.</summary>
    private static bool StartsWithSegment(ref ReadOnlySpan<char> path, string segments)
    {
        if (!path.StartsWith(segments, StringComparison.OrdinalIgnoreCase) || (path.Length > segments.Length && path[segments.Length] != '/'))
        {
            return false;
        }

        path = path[segments.Length..];
        return true;
    }
}
