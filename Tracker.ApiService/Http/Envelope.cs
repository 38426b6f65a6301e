namespace Tracker.ApiService.Http;

/// <summary>The success body of every endpoint, as the original server sent it: <c>{"message", "data"}</c>.</summary>
public sealed record Envelope<T>(string Message, T Data);

/// <summary>Builds <see cref="Envelope{T}"/> without spelling the type argument.</summary>
public static class Envelope
{
    public static Envelope<T> Of<T>(string message, T data) => new(message, data);
}
