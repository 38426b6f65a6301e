using System.Globalization;
using Microsoft.AspNetCore.Mvc;

namespace Tracker.ApiService.Http;

/// <summary>The 429 answer every refusal writes: whole seconds in <c>Retry-After</c> and a ProblemDetails body.</summary>
public static class TooManyRequests
{
    /// <summary><paramref name="retryAfter"/> as the whole seconds <c>Retry-After</c> carries, at least 1.</summary>
    public static long Seconds(TimeSpan retryAfter) => Math.Max(1, (long)Math.Ceiling(retryAfter.TotalSeconds));

    public static async ValueTask WriteAsync(HttpContext http, long retryAfterSeconds, string title, string detail)
    {
        http.Response.StatusCode = StatusCodes.Status429TooManyRequests;
        http.Response.Headers.RetryAfter = retryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails = new ProblemDetails { Status = StatusCodes.Status429TooManyRequests, Title = title, Detail = detail },
        });
    }
}
