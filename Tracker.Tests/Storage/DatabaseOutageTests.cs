using System.Diagnostics;
using System.Net;
using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.ProblemAssertions;

namespace Tracker.Tests.Storage;

/// <summary>
/// A request that needs PostgreSQL while it is down is answered at once with 503 and Retry-After: it never
/// waits out a retry policy, and the failure is not reported as the server's own fault (500).
/// </summary>
[Collection(nameof(RealServers))]
public sealed class DatabaseOutageTests(ServersFixture servers, ITestOutputHelper output) : ApiTest(servers)
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Ingest_with_an_uncached_key_answers_503_with_Retry_After_promptly_while_postgres_is_down()
    {
        var client = await Http.RegisterNewAsync();
        // A fresh instance: nothing about the key is in its memory, and the key was never looked up, so Redis has
        // nothing either; authenticating it needs the database.
        await using var sibling = Factory.CreateSibling();
        using var siblingHttp = sibling.CreateClient();

        var (status, elapsed, retryAfter, body) = await WhilePostgresIsDownAsync(() => siblingHttp.PostLogAsync(client.ApiKey, Log()));

        output.WriteLine($"{(int)status} after {elapsed.TotalSeconds:F1} s: {body}");
        AssertUnavailable(status, elapsed, retryAfter, body);
    }

    [Fact]
    public async Task Usage_with_an_uncached_client_answers_503_with_Retry_After_promptly_while_postgres_is_down()
    {
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        await using var sibling = Factory.CreateSibling();
        using var siblingHttp = sibling.CreateClient();

        var (status, elapsed, retryAfter, body) = await WhilePostgresIsDownAsync(() =>
            siblingHttp.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/daily", token));

        output.WriteLine($"{(int)status} after {elapsed.TotalSeconds:F1} s: {body}");
        AssertUnavailable(status, elapsed, retryAfter, body);
    }

    private async Task<(HttpStatusCode Status, TimeSpan Elapsed, string? RetryAfter, string Body)> WhilePostgresIsDownAsync(
        Func<Task<HttpResponseMessage>> send)
    {
        await Servers.Postgres.StopAsync();
        try
        {
            var stopwatch = Stopwatch.StartNew();
            using var response = await send().WaitAsync(TimeSpan.FromSeconds(90));
            var elapsed = stopwatch.Elapsed;
            var retryAfter = response.Headers.TryGetValues("Retry-After", out var values) ? values.Single() : null;
            var body = await response.Content.ReadAsStringAsync();
            if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
            {
                await AssertProblemAsync(response, HttpStatusCode.ServiceUnavailable);
            }

            return (response.StatusCode, elapsed, retryAfter, body);
        }
        finally
        {
            await Servers.Postgres.StartAsync();
        }
    }

    private static void AssertUnavailable(HttpStatusCode status, TimeSpan elapsed, string? retryAfter, string body)
    {
        Assert.True(status == HttpStatusCode.ServiceUnavailable, $"Expected 503, got {(int)status} after {elapsed.TotalSeconds:F1} s: {body}");
        Assert.True(elapsed < Prompt, $"Answered after {elapsed.TotalSeconds:F1} s");
        Assert.True(int.TryParse(retryAfter, out var seconds) && seconds > 0, $"Retry-After: {retryAfter}");
        AssertNoInternals(body);
        Assert.DoesNotContain("127.0.0.1", body, StringComparison.Ordinal);
    }
}
