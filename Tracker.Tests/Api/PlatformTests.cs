using System.Net;
using System.Text.Json;
using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;
using static Tracker.Tests.Infrastructure.ProblemAssertions;

namespace Tracker.Tests.Api;

/// <summary>The API's shared behaviour, on Kestrel against real PostgreSQL and Redis.</summary>
[Collection(nameof(RealServers))]
public sealed class PlatformTests(ServersFixture servers, ITestOutputHelper output) : ApiTest(servers)
{
    [Fact]
    public async Task Health_is_healthy_when_database_and_redis_answer()
    {
        using var response = await Http.GetAsync(new Uri("/health", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Healthy", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Health_is_unhealthy_while_redis_is_down_and_recovers_when_it_returns()
    {
        using (var beforeOutage = await Http.GetAsync(new Uri("/health", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.OK, beforeOutage.StatusCode);
        }

        await Servers.Redis.StopAsync();
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            // A probe result is shared for up to a second, so the outage shows within a few.
            await Poll.UntilAsync(async () =>
            {
                using var whileDown = await Http.GetAsync(new Uri("/health", UriKind.Relative));
                return whileDown.StatusCode == HttpStatusCode.ServiceUnavailable;
            }, TimeSpan.FromSeconds(10));
            output.WriteLine($"Unhealthy answered after {stopwatch.Elapsed.TotalSeconds:F1} s");

            // Liveness does not depend on Redis: the process is fine, so no orchestrator should restart it.
            using var alive = await Http.GetAsync(new Uri("/alive", UriKind.Relative));
            Assert.Equal(HttpStatusCode.OK, alive.StatusCode);
        }
        finally
        {
            await Servers.Redis.StartAsync();
        }

        var deadline = DateTime.UtcNow.AddSeconds(30);
        HttpStatusCode status;
        do
        {
            await Task.Delay(200);
            using var afterRestart = await Http.GetAsync(new Uri("/health", UriKind.Relative));
            status = afterRestart.StatusCode;
        }
        while (status != HttpStatusCode.OK && DateTime.UtcNow < deadline);

        Assert.Equal(HttpStatusCode.OK, status);
        output.WriteLine($"Healthy again {stopwatch.Elapsed.TotalSeconds:F1} s after Redis went down");
    }

    [Fact]
    public async Task Health_is_unhealthy_while_postgres_is_down_and_each_probe_logs_one_line_without_a_stack()
    {
        await Servers.Postgres.StopAsync();
        try
        {
            for (var probe = 0; probe < 3; probe++)
            {
                using var whileDown = await Http.GetAsync(new Uri("/health", UriKind.Relative));
                Assert.Equal(HttpStatusCode.ServiceUnavailable, whileDown.StatusCode);
            }

            using var alive = await Http.GetAsync(new Uri("/alive", UriKind.Relative));
            Assert.Equal(HttpStatusCode.OK, alive.StatusCode);
        }
        finally
        {
            await Servers.Postgres.StartAsync();
        }

        var probeLines = Factory.Logs.Lines.Where(line => line.Contains("PostgreSQL does not answer", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, probeLines.Count);
        Assert.All(probeLines, line => Assert.DoesNotContain("   at ", line, StringComparison.Ordinal));
        Assert.DoesNotContain(Factory.Logs.Lines, line => line.Contains("HealthChecks", StringComparison.Ordinal) && line.Contains("   at ", StringComparison.Ordinal));

        await Poll.UntilAsync(async () =>
        {
            using var afterRestart = await Http.GetAsync(new Uri("/health", UriKind.Relative));
            return afterRestart.StatusCode == HttpStatusCode.OK;
        }, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public async Task Unknown_route_is_a_404_problem()
    {
        using var response = await Http.GetAsync(new Uri("/api/v1/nothing-here", UriKind.Relative));

        var problem = await AssertProblemAsync(response, HttpStatusCode.NotFound);
        Assert.Equal("No resource matches GET /api/v1/nothing-here.", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Wrong_method_is_a_405_problem()
    {
        using var response = await Http.DeleteAsync(new Uri("/openapi/v1.json", UriKind.Relative));

        var problem = await AssertProblemAsync(response, HttpStatusCode.MethodNotAllowed);
        Assert.Equal("DELETE is not allowed on /openapi/v1.json.", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task OpenApi_document_describes_the_api()
    {
        using var response = await Http.GetAsync(new Uri("/openapi/v1.json", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.StartsWith("3.", document.RootElement.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        Assert.Equal("Tracker API", document.RootElement.GetProperty("info").GetProperty("title").GetString());
    }

    [Fact]
    public async Task The_api_root_leads_to_the_docs_page()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = Http.BaseAddress };
        using var root = await http.GetAsync(new Uri("/", UriKind.Relative));

        Assert.Equal(HttpStatusCode.Redirect, root.StatusCode);
        Assert.Equal("/api/", root.Headers.Location?.OriginalString);
        using var docs = await http.GetAsync(root.Headers.Location);
        Assert.Equal(HttpStatusCode.OK, docs.StatusCode);
        Assert.Equal("text/html", docs.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Docs_page_loads_its_script_from_this_server_only()
    {
        using var page = await Http.GetAsync(new Uri("/api/", UriKind.Relative));
        var html = await page.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.DoesNotContain("src=\"http", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("cdn.", html, StringComparison.OrdinalIgnoreCase);

        using var script = await Http.GetAsync(new Uri("/api/scalar.js", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
        Assert.True((await script.Content.ReadAsByteArrayAsync()).Length > 100_000, "the bundled docs script is served locally");
    }

    [Theory]
    [InlineData("/alive")]
    [InlineData("/openapi/v1.json")]
    [InlineData("/api/v1/nothing-here")]
    public async Task Every_response_carries_the_security_headers(string path)
    {
        using var response = await Http.GetAsync(new Uri(path, UriKind.Relative));

        Assert.Equal("nosniff", Header(response, "X-Content-Type-Options"));
        Assert.Equal("no-referrer", Header(response, "Referrer-Policy"));
        Assert.Equal("DENY", Header(response, "X-Frame-Options"));
        Assert.Equal("default-src 'none'; frame-ancestors 'none'", Header(response, "Content-Security-Policy"));
    }

    [Fact]
    public async Task Docs_page_may_run_its_own_script_but_nothing_from_elsewhere()
    {
        using var response = await Http.GetAsync(new Uri("/api/", UriKind.Relative));

        Assert.Equal("nosniff", Header(response, "X-Content-Type-Options"));
        Assert.Null(Header(response, "X-Frame-Options"));
        var policy = Header(response, "Content-Security-Policy");
        Assert.Contains("default-src 'self'", policy, StringComparison.Ordinal);
        Assert.DoesNotContain("http", policy, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_invalid_setting_stops_the_api_at_start_naming_the_setting()
    {
        await using var misconfigured = await TrackerApiFactory.CreateAsync(
            Servers, new Dictionary<string, string?> { ["RequestLimits:MaxRequestBodyBytes"] = "10" });

        var exception = Assert.ThrowsAny<Exception>(() => misconfigured.CreateClient());
        var validation = Assert.IsType<Microsoft.Extensions.Options.OptionsValidationException>(exception.GetBaseException());
        Assert.Contains("MaxRequestBodyBytes", validation.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("RateLimiting:Ingest:TokensPerSecond", "0")]
    [InlineData("RateLimiting:Auth:PermitLimit", "0")]
    [InlineData("Usage:FreshnessMilliseconds", "10")]
    [InlineData("ForwardedHeaders:TrustedProxies:0", "not-an-address")]
    public async Task An_invalid_limit_freshness_or_proxy_stops_the_api_at_start(string setting, string value)
    {
        await using var misconfigured = await TrackerApiFactory.CreateAsync(Servers, new Dictionary<string, string?> { [setting] = value });

        var exception = Assert.ThrowsAny<Exception>(() => misconfigured.CreateClient());
        var validation = Assert.IsType<Microsoft.Extensions.Options.OptionsValidationException>(exception.GetBaseException());
        Assert.Contains(setting.Split(':')[^1] is var last && last == "0" ? "TrustedProxies" : last, validation.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("too-short-for-hs256")]
    public async Task A_missing_or_short_jwt_signing_key_stops_the_api_at_start(string signingKey)
    {
        await using var misconfigured = await TrackerApiFactory.CreateAsync(
            Servers, new Dictionary<string, string?> { ["Jwt:SigningKey"] = signingKey });

        var exception = Assert.ThrowsAny<Exception>(() => misconfigured.CreateClient());
        var validation = Assert.IsType<Microsoft.Extensions.Options.OptionsValidationException>(exception.GetBaseException());
        Assert.Contains("Jwt:SigningKey must be set to a secret of at least 32 bytes", validation.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OpenApi_document_declares_both_security_schemes_and_uses_them_per_route()
    {
        using var response = await Http.GetAsync(new Uri("/openapi/v1.json", UriKind.Relative));
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = document.RootElement;

        var schemes = root.GetProperty("components").GetProperty("securitySchemes");
        Assert.Equal("bearer", schemes.GetProperty("Bearer").GetProperty("scheme").GetString());
        Assert.Equal("X-API-Key", schemes.GetProperty("ApiKey").GetProperty("name").GetString());

        var paths = root.GetProperty("paths");
        Assert.True(SecuredBy(paths, "/api/v1/keys", "get", "Bearer"));
        Assert.True(SecuredBy(paths, "/api/v1/keys/{id}", "delete", "Bearer"));
        Assert.True(SecuredBy(paths, "/api/v1/keys/current", "get", "ApiKey"));
        Assert.False(paths.GetProperty("/api/v1/auth/login").GetProperty("post").TryGetProperty("security", out _));
        foreach (var (path, method) in new[] { ("/api/v1/auth/register", "post"), ("/api/v1/auth/login", "post"), ("/api/v1/keys", "post") })
        {
            var operation = paths.GetProperty(path).GetProperty(method);
            Assert.False(string.IsNullOrEmpty(operation.GetProperty("summary").GetString()));
            Assert.False(string.IsNullOrEmpty(operation.GetProperty("operationId").GetString()));
            Assert.True(operation.TryGetProperty("requestBody", out _));
        }
    }

    private static bool SecuredBy(JsonElement paths, string path, string method, string scheme) =>
        paths.GetProperty(path).GetProperty(method).TryGetProperty("security", out var security)
        && security.EnumerateArray().Any(requirement => requirement.TryGetProperty(scheme, out _));

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values)
        : response.Content.Headers.TryGetValues(name, out var contentValues) ? string.Join(",", contentValues)
        : null;
}
