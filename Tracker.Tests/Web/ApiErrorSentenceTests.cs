using System.Net;
using System.Text;
using Tracker.Tests.Infrastructure;
using Tracker.Web.Api;

namespace Tracker.Tests.Web;

/// <summary>The web front end tells API failures as sentences: never a status code, a stack trace or raw JSON.</summary>
public sealed class ApiErrorSentenceTests
{
    [Fact]
    public async Task A_rate_limited_answer_says_how_long_to_wait()
    {
        var error = await SignInFailureAsync(Answer(HttpStatusCode.TooManyRequests, """{"title":"Too many requests.","status":429}""", retryAfterSeconds: 41));

        Assert.Equal(ApiErrorKind.RateLimited, error.Kind);
        Assert.Equal("Too many requests in a short time. Wait 41 seconds, then try again.", error.Message);
    }

    [Fact]
    public async Task A_refused_sign_in_is_a_wrong_password_and_a_refused_token_an_ended_session()
    {
        var signIn = await SignInFailureAsync(Answer(HttpStatusCode.Unauthorized, """{"title":"Invalid credentials","status":401}"""));
        var keys = await CallAsync(Answer(HttpStatusCode.Unauthorized, """{"title":"Unauthorized","status":401}"""),
            client => client.GetKeysAsync("token", CancellationToken.None));

        Assert.Equal("The email or the password is wrong.", signIn.Message);
        Assert.Equal(ApiErrorKind.SessionExpired, keys.Kind);
    }

    [Fact]
    public async Task Refused_fields_are_listed_in_the_apis_words()
    {
        var error = await CallAsync(
            Answer(HttpStatusCode.BadRequest, """{"title":"One or more validation errors occurred.","status":400,"errors":{"password":["Password must contain a digit."]}}"""),
            client => client.RegisterAsync(new RegisterRequest("Acme", "ops@acme.example", "password"), CancellationToken.None));

        Assert.Equal(ApiErrorKind.Refused, error.Kind);
        Assert.Equal(["Password must contain a digit."], error.Details);
    }

    [Fact]
    public async Task A_server_failure_gives_the_trace_id_to_quote_and_no_status_code()
    {
        var error = await CallAsync(
            Answer(HttpStatusCode.InternalServerError, """{"title":"An unexpected error occurred.","status":500,"traceId":"00-abc-01"}"""),
            client => client.GetDailyUsageAsync("token", 7, CancellationToken.None));

        Assert.Equal(ApiErrorKind.Unexpected, error.Kind);
        Assert.Contains("00-abc-01", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("500", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_api_that_does_not_answer_is_unreachable()
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{FreePort.Next()}/"), Timeout = TimeSpan.FromSeconds(5) };
        var result = await new TrackerApiClient(http).GetKeysAsync("token", CancellationToken.None);

        Assert.False(result.Succeeded);
        Assert.Equal(ApiErrorKind.Unreachable, result.Error.Kind);
        Assert.Equal("The Tracker API cannot be reached right now. Check your connection and try again in a moment.", result.Error.Message);
    }

    private static Task<ApiError> SignInFailureAsync(HttpResponseMessage answer) =>
        CallAsync(answer, client => client.SignInAsync(new LoginRequest("ops@acme.example", "Wrong-horse-1"), CancellationToken.None));

    private static async Task<ApiError> CallAsync<T>(HttpResponseMessage answer, Func<TrackerApiClient, Task<ApiResult<T>>> call)
    {
        using var http = new HttpClient(new CannedAnswer(answer)) { BaseAddress = new Uri("http://api.test/") };
        var result = await call(new TrackerApiClient(http));
        Assert.False(result.Succeeded);
        return result.Error;
    }

    private static HttpResponseMessage Answer(HttpStatusCode status, string problemJson, int? retryAfterSeconds = null)
    {
        var answer = new HttpResponseMessage(status) { Content = new StringContent(problemJson, Encoding.UTF8, "application/problem+json") };
        if (retryAfterSeconds is { } seconds)
        {
            answer.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(seconds));
        }

        return answer;
    }

    /// <summary>Stands in for the API's HTTP answer; what is under test is how the web front end words it.</summary>
    private sealed class CannedAnswer(HttpResponseMessage answer) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(answer);
    }
}
