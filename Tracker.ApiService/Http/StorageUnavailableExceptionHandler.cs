using System.Globalization;
using System.Net.Sockets;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Net.Http.Headers;
using Npgsql;
using StackExchange.Redis;

namespace Tracker.ApiService.Http;

/// <summary>
/// A request that needed PostgreSQL or Redis while it did not answer gets 503 with <c>Retry-After</c>: the outage is
/// the dependency's, not a fault of the server's code, and the client should come back rather than report a bug.
/// The body says nothing about the failure (no host, SQL or message); one line with its kind is logged, without a
/// stack, so an outage does not flood the log with traces of a condition already known.
/// </summary>
internal sealed partial class StorageUnavailableExceptionHandler(
    IProblemDetailsService problemDetails, ILogger<StorageUnavailableExceptionHandler> logger) : IExceptionHandler
{
    /// <summary>Long enough for a restart or failover to be noticed, short enough not to idle a client long.</summary>
    public const int RetryAfterSeconds = 5;

    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (FindUnavailability(exception) is not { } cause)
        {
            return false;
        }

        LogUnavailable(httpContext.Request.Method, httpContext.Request.Path, cause.GetType().Name);
        httpContext.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        httpContext.Response.Headers[HeaderNames.RetryAfter] = RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        return await problemDetails.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            ProblemDetails = new ProblemDetails
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Title = "A service the API depends on is unavailable.",
                Detail = "The database or cache did not answer in time. Retry after the number of seconds in Retry-After.",
            },
        });
    }

    /// <summary>
    /// The exception in <paramref name="exception"/>'s chain that says PostgreSQL or Redis could not be reached or
    /// did not answer in time, if there is one. EF Core wraps a transient Npgsql failure in its own exception, so the
    /// whole chain is searched.
    /// </summary>
    public static Exception? FindUnavailability(Exception exception)
    {
        for (Exception? current = exception; current is not null; current = current.InnerException)
        {
            if (current is NpgsqlException { IsTransient: true } or TimeoutException or SocketException
                or RedisConnectionException or RedisTimeoutException)
            {
                return current;
            }
        }

        return null;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Method} {Path} answered 503: storage unavailable ({Cause})")]
    private partial void LogUnavailable(string method, string path, string cause);
}
