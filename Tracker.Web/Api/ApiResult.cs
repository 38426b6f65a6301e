using System.Diagnostics.CodeAnalysis;

namespace Tracker.Web.Api;

/// <summary>What a call to the API gave: its data, or an error already put into words for the page.</summary>
public sealed class ApiResult<T>
{
    internal ApiResult(T? value, ApiError? error)
    {
        Value = value;
        Error = error;
    }

    public T? Value { get; }

    public ApiError? Error { get; }

    [MemberNotNullWhen(true, nameof(Value))]
    [MemberNotNullWhen(false, nameof(Error))]
    public bool Succeeded => Error is null;
}

public static class ApiResult
{
    public static ApiResult<T> Success<T>(T value) => new(value, null);

    public static ApiResult<T> Failure<T>(ApiError error) => new(default, error);
}

public enum ApiErrorKind
{
    /// <summary>Sign-in refused: the email or the password is wrong.</summary>
    InvalidCredentials,

    /// <summary>The access token in the cookie is no longer accepted: the person must sign in again.</summary>
    SessionExpired,

    /// <summary>The API asked to wait (429).</summary>
    RateLimited,

    /// <summary>The API answered that it or a service it depends on is unavailable (503).</summary>
    Unavailable,

    /// <summary>The API did not answer at all.</summary>
    Unreachable,

    /// <summary>The API refused the request for a reason it explained (validation, conflict, not found).</summary>
    Refused,

    /// <summary>Anything else: a failure on the API's side.</summary>
    Unexpected,
}

/// <summary>An API failure as sentences a person can act on; never a status code or a stack trace.</summary>
/// <param name="Message">The sentence to show.</param>
/// <param name="Details">Further sentences, such as each field the API refused and why.</param>
public sealed record ApiError(ApiErrorKind Kind, string Message, IReadOnlyList<string> Details)
{
    public ApiError(ApiErrorKind kind, string message) : this(kind, message, [])
    {
    }
}
