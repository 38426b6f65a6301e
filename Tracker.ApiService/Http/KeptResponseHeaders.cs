namespace Tracker.ApiService.Http;

/// <summary>
/// Response headers that must survive the exception handler, which clears the response before it writes its answer:
/// set through <see cref="Set"/>, they are written again on every ProblemDetails answer. The rate limit's headers are
/// kept this way, so that a request that ends in an exception still says what it spent (a malformed batch has paid
/// its logs before the binder failed on it).
/// </summary>
public sealed class KeptResponseHeaders
{
    private readonly List<KeyValuePair<string, string>> _headers = new(2);

    /// <summary>Sets the response header and keeps it; a later value for the same name replaces the earlier.</summary>
    public static void Set(HttpContext http, string name, string value)
    {
        http.Response.Headers[name] = value;
        var kept = http.Features.Get<KeptResponseHeaders>();
        if (kept is null)
        {
            kept = new KeptResponseHeaders();
            http.Features.Set(kept);
        }

        // Replaced in place: every limited ingest request sets two, and a lambda here allocated a closure per call.
        var headers = kept._headers;
        for (var index = 0; index < headers.Count; index++)
        {
            if (headers[index].Key == name)
            {
                headers[index] = new(name, value);
                return;
            }
        }

        headers.Add(new(name, value));
    }

    /// <summary>Writes the kept headers again, unless the response has started.</summary>
    public static void Restore(HttpContext http)
    {
        if (http.Features.Get<KeptResponseHeaders>() is not { } kept || http.Response.HasStarted)
        {
            return;
        }

        foreach (var (name, value) in kept._headers)
        {
            http.Response.Headers[name] = value;
        }
    }
}
