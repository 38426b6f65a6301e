using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Polly;

namespace Tracker.Web.Api;

/// <summary>
/// The Tracker HTTP API as the pages use it (see docs/api.md). Each call returns its data or an
/// <see cref="ApiError"/> in words; the caller passes the signed-in person's access token, which never leaves
/// the server.
/// </summary>
public sealed class TrackerApiClient(HttpClient http)
{
    public Task<ApiResult<Registration>> RegisterAsync(RegisterRequest request, CancellationToken cancellationToken) =>
        SendAsync<Registration>(HttpMethod.Post, "api/v1/auth/register", accessToken: null, request, isSignIn: false, cancellationToken);

    public Task<ApiResult<SignedInClient>> SignInAsync(LoginRequest request, CancellationToken cancellationToken) =>
        SendAsync<SignedInClient>(HttpMethod.Post, "api/v1/auth/login", accessToken: null, request, isSignIn: true, cancellationToken);

    public Task<ApiResult<List<ApiKeySummary>>> GetKeysAsync(string accessToken, CancellationToken cancellationToken) =>
        GetAsync<List<ApiKeySummary>>("api/v1/keys", accessToken, cancellationToken);

    public Task<ApiResult<CreatedApiKey>> CreateKeyAsync(string accessToken, string name, CancellationToken cancellationToken) =>
        SendAsync<CreatedApiKey>(HttpMethod.Post, "api/v1/keys", accessToken, new CreateApiKeyRequest(name), isSignIn: false, cancellationToken);

    /// <summary>Revokes the key; succeeds with <c>true</c>, also for a key already revoked.</summary>
    public async Task<ApiResult<bool>> RevokeKeyAsync(string accessToken, Guid keyId, CancellationToken cancellationToken)
    {
        var revoked = await SendAsync<bool>(HttpMethod.Delete, $"api/v1/keys/{keyId}", accessToken, body: null, isSignIn: false, cancellationToken);
        return revoked.Succeeded ? ApiResult.Success(true) : revoked;
    }

    public Task<ApiResult<List<DailyUsage>>> GetDailyUsageAsync(string accessToken, int days, CancellationToken cancellationToken) =>
        GetAsync<List<DailyUsage>>(Query($"api/v1/usages/daily?days={days}"), accessToken, cancellationToken);

    public Task<ApiResult<List<TopClient>>> GetTopClientsAsync(string accessToken, int hours, int limit, CancellationToken cancellationToken) =>
        GetAsync<List<TopClient>>(Query($"api/v1/usages/top?hours={hours}&limit={limit}"), accessToken, cancellationToken);

    public Task<ApiResult<List<EndpointUsage>>> GetEndpointsAsync(string accessToken, int hours, int limit, CancellationToken cancellationToken) =>
        GetAsync<List<EndpointUsage>>(Query($"api/v1/usages/endpoints?hours={hours}&limit={limit}"), accessToken, cancellationToken);

    public Task<ApiResult<UsageSeries>> GetSeriesAsync(string accessToken, SeriesQuery series, CancellationToken cancellationToken) =>
        GetAsync<UsageSeries>(
            Query($"api/v1/usages/series?granularity={series.Granularity}&days={series.Days}&tz={Uri.EscapeDataString(series.TimeZone)}&limit={series.Limit}")
            + (series.GroupBy is { } groupBy ? $"&groupBy={groupBy}" : ""),
            accessToken, cancellationToken);

    private Task<ApiResult<T>> GetAsync<T>(string path, string accessToken, CancellationToken cancellationToken) =>
        SendAsync<T>(HttpMethod.Get, path, accessToken, body: null, isSignIn: false, cancellationToken);

    private static string Query(FormattableString path) => path.ToString(CultureInfo.InvariantCulture);

    private async Task<ApiResult<T>> SendAsync<T>(
        HttpMethod method, string path, string? accessToken, object? body, bool isSignIn, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative));
        if (accessToken is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        }

        if (body is not null)
        {
            request.Content = JsonContent.Create(body, body.GetType());
        }

        try
        {
            using var response = await http.SendAsync(request, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                return ApiResult.Failure<T>(await ApiErrors.ReadAsync(response, isSignIn, cancellationToken));
            }

            if (response.StatusCode == HttpStatusCode.NoContent)
            {
                // Only revocation answers without a body; RevokeKeyAsync says what that means.
                return ApiResult.Success<T>(default!);
            }

            var envelope = await response.Content.ReadFromJsonAsync<Envelope<T>>(cancellationToken);
            return envelope is null ? ApiResult.Failure<T>(ApiErrors.Unreachable) : ApiResult.Success(envelope.Data);
        }
        catch (Exception exception) when (IsUnreachable(exception, cancellationToken))
        {
            return ApiResult.Failure<T>(ApiErrors.Unreachable);
        }
    }

    // No answer: refused connection, name not resolved, timeout, an open circuit, or an answer that was not the API's.
    private static bool IsUnreachable(Exception exception, CancellationToken cancellationToken) =>
        exception is HttpRequestException or ExecutionRejectedException or System.Text.Json.JsonException
        || (exception is OperationCanceledException && !cancellationToken.IsCancellationRequested);
}
