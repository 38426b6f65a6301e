using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace Tracker.ApiService.Http;

/// <summary>
/// Answers requests that could not be read — malformed JSON, unknown properties, a body over the limit, a
/// non-JSON content type — with a ProblemDetails that says what is wrong, in the client's terms.
/// </summary>
internal sealed partial class BadRequestExceptionHandler(IProblemDetailsService problemDetails) : IExceptionHandler
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
        else if (UnboundParameter().Match(badRequest.Message) is { Success: true } unbound)
        {
            // A query or header value of the wrong type, e.g. ?days=abc for an integer: named like a validation error.
            var name = unbound.Groups["name"].Value;
            problem = new HttpValidationProblemDetails(new Dictionary<string, string[]> { [name] = [$"'{unbound.Groups["value"].Value}' is not a valid value."] })
            {
                Status = status,
                Title = "One or more validation errors occurred.",
                Detail = $"'{name}' has a value of the wrong type.",
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

    // The framework's message for a parameter it could not convert: Failed to bind parameter "int? days" from "abc".
    [GeneratedRegex("""^Failed to bind parameter "(?:[^"]* )?(?<name>[^" ]+)" from "(?<value>.*)"\.$""", RegexOptions.Singleline)]
    private static partial Regex UnboundParameter();

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
