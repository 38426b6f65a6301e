using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace Tracker.ApiService.Http;

/// <summary>
/// Answers requests that could not be read — malformed JSON, unknown properties, a body over the limit, a
/// non-JSON content type — with a ProblemDetails that says what is wrong, in the client's terms.
/// </summary>
internal sealed class BadRequestExceptionHandler(IProblemDetailsService problemDetails) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not BadHttpRequestException badRequest)
        {
            return false;
        }

        var status = badRequest.StatusCode;
        httpContext.Response.StatusCode = status;

        ProblemDetails problem;
        if (FindJsonException(badRequest) is { } jsonException)
        {
            var (field, message) = JsonErrorDescriber.Describe(jsonException);
            problem = field.Length == 0
                ? new ProblemDetails { Status = status, Title = "The request body is invalid.", Detail = message }
                : new HttpValidationProblemDetails(new Dictionary<string, string[]> { [field] = [message] })
                {
                    Status = status,
                    Title = "One or more validation errors occurred.",
                    Detail = $"'{field}': {message}",
                };
        }
        else
        {
            problem = new ProblemDetails
            {
                Status = status,
                Title = status == StatusCodes.Status400BadRequest ? "The request could not be read." : null,
                // 413 and 415 get their sentence from the shared defaults; for a 400 the body was missing or empty.
                Detail = status == StatusCodes.Status400BadRequest ? "A JSON object is required as the request body." : null,
            };
        }

        return await problemDetails.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            ProblemDetails = problem,
            Exception = exception,
        });
    }

    private static JsonException? FindJsonException(Exception exception)
    {
        for (var inner = exception.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (inner is JsonException json)
            {
                return json;
            }
        }

        return null;
    }
}
