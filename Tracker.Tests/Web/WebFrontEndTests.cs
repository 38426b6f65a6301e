using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Tracker.Tests.AppHost;
using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Tracker.Tests.Web;

/// <summary>
/// The web front end in a real headless Chromium (Debian's <c>chromium</c>, which <c>test.sh</c> installs) against the
/// whole system started through Aspire.Hosting.Testing.
/// </summary>
[Collection(nameof(WholeSystem))]
public sealed partial class WebFrontEndTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan TestTimeout = TimeSpan.FromMinutes(4);

    /// <summary>The browser's time zone: the usage series is drawn in it. Not UTC, so that a page ignoring it shows.</summary>
    private const string BrowserTimeZone = "Asia/Tokyo";

    private readonly string _dataDirectory = TestDirectories.NewPath("web");

    [Fact]
    public async Task A_newcomer_registers_signs_in_sees_logs_arrive_by_day_endpoint_and_hour_revokes_the_key_and_signs_out()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        // The walk-through opens the usage page far more often in a minute than a person would, so the usage limit is
        // raised; what one view and one refresh cost the client's limit is asserted exactly instead, from the RateLimit
        // header, which is exact only when every usage request is decided by its own round trip: with leases it may
        // understate what is left by the permits of a fetch in flight (README), and a CI run saw 5 where 2 was spent.
        await using var app = await WholeSystemApp.StartAsync(
            ["Tracker:Infrastructure=LocalProcesses", $"Tracker:DataDirectory={_dataDirectory}"],
            timeout.Token,
            builder => builder.CreateResourceBuilder(builder.Resources.OfType<ProjectResource>().Single(resource => resource.Name == "api"))
                .WithEnvironment("RateLimiting__Usage__PermitLimit", "600")
                .WithEnvironment("RateLimiting__Usage__LeaseMilliseconds", "0"));
        var notifications = app.Services.GetRequiredService<ResourceNotificationService>();
        await notifications.WaitForResourceHealthyAsync("web", timeout.Token);
        using var api = app.CreateHttpClient("api");

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await HeadlessChromium.LaunchAsync(playwright);
        await using var context = await browser.NewContextAsync(new()
        {
            BaseURL = app.GetEndpoint("web", "http").ToString(),
            Permissions = ["clipboard-read", "clipboard-write"],
            TimezoneId = BrowserTimeZone,
        });
        context.SetDefaultTimeout(15_000);
        var page = await context.NewPageAsync();
        // A refused script or style (CSP), a failed asset or a script error shows up here, and fails the test.
        var browserErrors = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                browserErrors.Add($"{message.Text} ({message.Location})");
            }
        };
        page.PageError += (_, error) => browserErrors.Add(error);
        try
        {
            await WalkThroughAsync(page, context, browser, api, timeout.Token);
            Assert.Empty(browserErrors);
        }
        catch
        {
            output.WriteLine($"Failed on {page.Url}; browser errors: {string.Join("; ", browserErrors)}\n{await page.ContentAsync()}");
            throw;
        }
    }

    private static async Task WalkThroughAsync(IPage page, IBrowserContext context, IBrowser browser, HttpClient api, CancellationToken cancellationToken)
    {
        var email = $"owner-{Guid.NewGuid():N}@example.com";
        const string Password = "Correct-horse-1";
        // Every log of the walk-through is sent at this moment, so they all fall in one hour of the series.
        var sentAt = DateTimeOffset.UtcNow;

        // Register: the key is shown once, with a copy button and the warning.
        var registerPage = await page.GotoAsync("/account/register");
        Assert.Contains("script-src 'self'", registerPage!.Headers["content-security-policy"], StringComparison.Ordinal);
        await page.GetByLabel("Name").FillAsync("Browser Test Co");
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Register" }).ClickAsync();
        await Expect(page.GetByText("you will not see it again")).ToBeVisibleAsync();
        var apiKey = await page.GetByRole(AriaRole.Textbox, new() { Name = "API key" }).InputValueAsync();
        Assert.Matches(ApiKeyShape(), apiKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Copy" }).ClickAsync();
        await Expect(page.GetByText("Copied to the clipboard.")).ToBeVisibleAsync();
        Assert.Equal(apiKey, await page.EvaluateAsync<string>("() => navigator.clipboard.readText()"));

        // A wrong password is told in words.
        await page.GetByRole(AriaRole.Link, new() { Name = "Sign in to see your usage" }).ClickAsync();
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync("Wrong-horse-1");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToHaveTextAsync("The email or the password is wrong.");

        // Sign in: the session is an HttpOnly cookie; the access token is nowhere the page's scripts can reach.
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByLabel("Password").PressAsync("Enter");
        await Expect(page).ToHaveURLAsync(UsagePath());
        await Expect(page.Locator("#usage-total")).ToHaveTextAsync("0 requests in the last 7 days.");
        var session = Assert.Single(await context.CookiesAsync(), cookie => cookie.Name == "tracker.session");
        Assert.True(session.HttpOnly);
        Assert.DoesNotMatch(
            JwtShape(), await page.EvaluateAsync<string>("() => document.cookie + JSON.stringify(localStorage) + document.documentElement.outerHTML"));

        // The key list shows the key's prefix, never the key.
        await page.GotoAsync("/keys");
        await Expect(page.Locator($"tr[data-key-prefix='{apiKey[..8]}']")).ToBeVisibleAsync();
        Assert.DoesNotContain(apiKey, await page.ContentAsync(), StringComparison.Ordinal);

        // A log sent with the key shows on the open usage page, which refreshes by itself (no reload here).
        await page.GotoAsync("/usage");
        await Expect(page.Locator("#usage-total")).ToHaveTextAsync("0 requests in the last 7 days.");
        using (var log = new HttpRequestMessage(HttpMethod.Post, new Uri("/api/v1/logs", UriKind.Relative)))
        {
            log.Headers.Add("X-API-Key", apiKey);
            log.Content = JsonContent.Create(new
            {
                ipAddress = "203.0.113.7",
                endpoint = "/v1/orders/42",
                method = "GET",
                timestamp = sentAt.ToUnixTimeMilliseconds(),
            });
            using var stored = await api.SendAsync(log, cancellationToken);
            Assert.Equal(HttpStatusCode.Created, stored.StatusCode);
        }

        await Expect(page.Locator("#usage-total")).ToHaveTextAsync("1 request in the last 7 days.", new() { Timeout = 30_000 });
        await Expect(page.Locator("#top-clients")).ToContainTextAsync("Browser Test Co (you)");

        await BreakdownsAsync(page, api, apiKey, sentAt, cancellationToken);
        await BrowserZoneTheApiCannotUseAsync(browser, context);

        // Readable at phone width: nothing wider than the screen (tables scroll inside their own box).
        await page.SetViewportSizeAsync(360, 740);
        Assert.Equal("", await WiderThanTheScreenAsync(page));
        await page.GotoAsync("/keys");
        Assert.Equal("", await WiderThanTheScreenAsync(page));
        await page.SetViewportSizeAsync(1280, 800);

        // What the open page costs the client's usage limit (the page is on /keys now, so nothing refreshes meanwhile).
        await UsageRequestCostsAsync(context, api, email, Password, cancellationToken);

        // Revoke the key in the page, after a confirmation; the API then refuses it.
        await page.GotoAsync("/keys");
        await page.GetByRole(AriaRole.Link, new() { Name = $"Revoke the key default ({apiKey[..8]})" }).ClickAsync();
        await Expect(page.GetByText("This cannot be undone.")).ToBeVisibleAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Revoke key" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("is revoked");
        await Expect(page.Locator($"tr[data-key-prefix='{apiKey[..8]}']")).ToContainTextAsync("Revoked");
        await HeadlessChromium.SaveScreenshotAsync(page, "web-keys.png");
        await Poll.UntilAsync(
            async () =>
            {
                using var current = new HttpRequestMessage(HttpMethod.Get, new Uri("/api/v1/keys/current", UriKind.Relative));
                current.Headers.Add("X-API-Key", apiKey);
                using var answer = await api.SendAsync(current, cancellationToken);
                return answer.StatusCode == HttpStatusCode.Unauthorized;
            },
            TimeSpan.FromSeconds(10),
            TimeSpan.FromMilliseconds(200));

        // Sign-out is a form with an antiforgery token: a cross-site post without one is refused and signs nobody out.
        var forged = await context.APIRequest.PostAsync(
            "/account/logout", new() { Form = context.APIRequest.CreateFormData().Set("signout", "true"), MaxRedirects = 0 });
        Assert.Equal(302, forged.Status);
        Assert.Equal("/status?code=400", forged.Headers["location"]);
        await page.ReloadAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { NameRegex = SignOutName() })).ToBeVisibleAsync();

        // Sign out: the session is gone and the pages ask to sign in again.
        await page.GetByRole(AriaRole.Button, new() { NameRegex = SignOutName() }).ClickAsync();
        await Expect(page.GetByText("You are signed out.")).ToBeVisibleAsync();
        Assert.DoesNotContain(await context.CookiesAsync(), cookie => cookie.Name == "tracker.session");
        await page.GotoAsync("/usage");
        await Expect(page).ToHaveURLAsync(SignInPath());
    }

    /// <summary>
    /// Logs with status codes and durations across endpoints: the endpoint table shows each endpoint's counts, errors
    /// and percentiles, and the series chart their groups, by status, endpoint and key, in the browser's time zone or
    /// a chosen one; a zone the API refuses is said in words.
    /// </summary>
    private static async Task BreakdownsAsync(IPage page, HttpClient api, string apiKey, DateTimeOffset sentAt, CancellationToken cancellationToken)
    {
        object Log(string method, string endpoint, int status, double durationMs) => new
        {
            ipAddress = "203.0.113.7", endpoint, method, timestamp = sentAt.ToUnixTimeMilliseconds(), statusCode = status, durationMs,
        };

        // With the log above (GET /v1/orders/42, neither field): 11 requests; 2xx 7, 4xx 2, 5xx 1, no status 1.
        using (var batch = await api.PostBatchAsync(apiKey,
        [
            Log("GET", "/v1/orders/7", 200, 10), Log("GET", "/v1/orders/8", 200, 20), Log("GET", "/v1/orders/9?expand=1", 200, 30),
            Log("GET", "/v1/orders/10", 404, 40), Log("GET", "/v1/orders/11", 500, 50),
            Log("POST", "/v1/orders", 201, 100), Log("POST", "/v1/orders", 201, 200), Log("POST", "/v1/orders", 201, 300),
            Log("GET", "/v1/users/7", 200, 5), Log("GET", "/v1/users/8", 401, 6),
        ]))
        {
            Assert.Equal(HttpStatusCode.Created, batch.StatusCode);
        }

        // The API's answers show an acknowledged log within its freshness (2 s): reload until they do.
        var endpoints = page.Locator("#endpoints tbody tr");
        await Poll.UntilAsync(
            async () =>
            {
                await page.GotoAsync("/usage?series=hour-2&groupBy=status");
                return await endpoints.CountAsync() == 3
                    && await page.Locator("#series-total").TextContentAsync() is { } series && series.StartsWith("11 ", StringComparison.Ordinal)
                    && await page.Locator("#usage-total").TextContentAsync() is { } daily && daily.StartsWith("11 ", StringComparison.Ordinal);
            },
            TimeSpan.FromSeconds(15),
            TimeSpan.FromSeconds(1));

        Assert.Equal(
            ["GET /v1/orders/{id}", "POST /v1/orders", "GET /v1/users/{id}"],
            await endpoints.EvaluateAllAsync<string[]>("rows => rows.map(row => row.dataset.endpoint)"));
        await AssertEndpointRowAsync(endpoints.Nth(0), ["GET", "/v1/orders/{id}", "6", "1", "1"], p50: 30, p95: 40, p99: 40);
        await AssertEndpointRowAsync(endpoints.Nth(1), ["POST", "/v1/orders", "3", "0", "0"], p50: 200, p95: 200, p99: 200);
        await AssertEndpointRowAsync(endpoints.Nth(2), ["GET", "/v1/users/{id}", "2", "1", "0"], p50: 5, p95: 5, p99: 5);

        // By status class, in the browser's zone: the legend, the chart's bars and its table agree.
        var tokyoHour = HourLabel(sentAt, BrowserTimeZone);
        await Expect(page.Locator("#series-total")).ToHaveTextAsync($"11 requests today and yesterday (times in {BrowserTimeZone}).");
        await Expect(page.Locator("#series-legend li")).ToHaveTextAsync(["2xx: 7 requests", "4xx: 2 requests", "5xx: 1 request", "no status code: 1 request"]);
        await Expect(page.Locator("#series-desc")).ToContainTextAsync("2xx: 7 requests; 4xx: 2 requests; 5xx: 1 request; no status code: 1 request.");
        await Expect(page.Locator("svg rect.segment.status-2xx > title")).ToHaveTextAsync($"{tokyoHour}, 2xx: 7 requests");
        await Expect(page.Locator("svg rect.segment.status-4xx > title")).ToHaveTextAsync($"{tokyoHour}, 4xx: 2 requests");
        await Expect(page.Locator("svg rect.segment.status-none > title")).ToHaveTextAsync($"{tokyoHour}, no status code: 1 request");
        await Expect(SeriesRow(page, tokyoHour)).ToHaveTextAsync(["7", "2", "1", "1"]);
        await Expect(page.Locator("#series-numbers tbody tr")).ToHaveCountAsync(48); // every hour of two Tokyo days, zero-filled
        await HeadlessChromium.SaveScreenshotAsync(page, "web-usage.png");

        // By endpoint, then by key (named as on the keys page) in a zone chosen in the form.
        var breakdownForm = page.GetByRole(AriaRole.Form, new() { Name = "Endpoints and series" });
        await page.GetByLabel("Grouped by").SelectOptionAsync("endpoint");
        await breakdownForm.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        await Expect(page.Locator("#series-legend li")).ToHaveTextAsync(["GET /v1/orders/{id}: 6 requests", "POST /v1/orders: 3 requests", "GET /v1/users/{id}: 2 requests"]);
        await Expect(SeriesRow(page, tokyoHour)).ToHaveTextAsync(["6", "3", "2"]);

        await page.GetByLabel("Grouped by").SelectOptionAsync("key");
        await page.GetByLabel("Time zone").FillAsync("Europe/Berlin");
        await breakdownForm.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        await Expect(page.Locator("#series-total")).ToHaveTextAsync("11 requests today and yesterday (times in Europe/Berlin).");
        await Expect(page.Locator("#series-legend li")).ToHaveTextAsync([$"default ({apiKey[..8]}…): 11 requests"]);
        await Expect(SeriesRow(page, HourLabel(sentAt, "Europe/Berlin"))).ToHaveTextAsync(["11"]);
        // The other form keeps these choices.
        await page.GetByLabel("Daily requests over").SelectOptionAsync("30");
        await page.GetByRole(AriaRole.Form, new() { Name = "Daily requests and top clients" }).GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        await Expect(page.Locator("#usage-total")).ToHaveTextAsync("11 requests in the last 30 days.");
        await Expect(page.Locator("#series-total")).ToHaveTextAsync("11 requests today and yesterday (times in Europe/Berlin).");

        // A zone the API does not know is said in its words; the endpoint table is still shown.
        await page.GetByLabel("Time zone").FillAsync("Mars/Olympus_Mons");
        await breakdownForm.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        var refusal = page.Locator("#usage-breakdowns [role=alert]");
        await Expect(refusal.Locator("p")).ToHaveTextAsync("Some of what you entered was not accepted:");
        await Expect(refusal.Locator("li")).ToHaveTextAsync("Must be an IANA time zone name, like Europe/Berlin or UTC.");
        await Expect(endpoints).ToHaveCountAsync(3);

        // The page with the most to lay out, for the phone-width check that follows.
        await page.GotoAsync("/usage?groupBy=endpoint");
        await Expect(page.Locator("#series-legend li")).ToHaveCountAsync(3);
    }

    /// <summary>
    /// A browser in a zone whose offset is not whole hours (Asia/Tehran, +03:30; the API refuses it rather than answer
    /// approximately): the series is drawn in UTC, and the page says why.
    /// </summary>
    private static async Task BrowserZoneTheApiCannotUseAsync(IBrowser browser, IBrowserContext signedIn)
    {
        await using var tehran = await browser.NewContextAsync(new()
        {
            BaseURL = new Uri(signedIn.Pages[0].Url).GetLeftPart(UriPartial.Authority),
            TimezoneId = "Asia/Tehran",
        });
        tehran.SetDefaultTimeout(15_000);
        await tehran.AddCookiesAsync((await signedIn.CookiesAsync()).Where(cookie => cookie.Name == "tracker.session").Select(cookie => new Microsoft.Playwright.Cookie
        {
            Name = cookie.Name, Value = cookie.Value, Domain = cookie.Domain, Path = cookie.Path, HttpOnly = cookie.HttpOnly, SameSite = cookie.SameSite,
        }));
        var page = await tehran.NewPageAsync();
        // The zone is written by the site's script on any page, as at sign-in; this context has not run it yet.
        await page.GotoAsync("/keys");
        await page.GotoAsync("/usage");
        var notice = page.Locator("#usage-breakdowns .notice");
        await Expect(notice).ToContainTextAsync("Times are in UTC: your browser's time zone, Asia/Tehran, cannot be used here.");
        await Expect(notice).ToContainTextAsync("offset from UTC is not a whole number of hours");
        await Expect(page.Locator("#series-total")).ToContainTextAsync("(times in UTC).");
        await Expect(page.GetByLabel("Time zone")).ToHaveValueAsync("UTC");
    }

    /// <summary>
    /// A view of the usage page asks the API four times (daily, top clients, endpoints, series); a refresh asks only
    /// for its region's two, and three when the series is by key (the key names). Counted by the API itself: the
    /// client's usage quota before and after, read with a token of the same client.
    /// </summary>
    private static async Task UsageRequestCostsAsync(IBrowserContext context, HttpClient api, string email, string password, CancellationToken cancellationToken)
    {
        string token;
        using (var login = await api.LoginAsync(email, password))
        {
            token = (await ApiClient.DataAsync(login, HttpStatusCode.OK)).GetProperty("token").GetProperty("accessToken").GetString()!;
        }

        async Task<int> CostAsync(string path, string? region)
        {
            var (before, resetsIn) = await UsageQuotaLeftAsync(api, token);
            if (resetsIn < 10)
            {
                await Task.Delay(TimeSpan.FromSeconds(resetsIn + 1), cancellationToken);
                (before, _) = await UsageQuotaLeftAsync(api, token);
            }

            var headers = new Dictionary<string, string>();
            if (region is not null)
            {
                headers["Tracker-Refresh-Region"] = region;
            }

            var view = await context.APIRequest.GetAsync(path, new() { Headers = headers });
            Assert.Equal(200, view.Status);
            var (after, _) = await UsageQuotaLeftAsync(api, token);
            return before - after - 1;
        }

        Assert.Equal(4, await CostAsync("/usage", region: null));
        Assert.Equal(2, await CostAsync("/usage", "usage-live"));
        Assert.Equal(2, await CostAsync("/usage", "usage-breakdowns"));
        Assert.Equal(3, await CostAsync("/usage?groupBy=key", "usage-breakdowns"));
    }

    /// <summary>What the client's usage limit has left, and the seconds until it is whole again, from its RateLimit header.</summary>
    private static async Task<(int Left, int ResetsIn)> UsageQuotaLeftAsync(HttpClient api, string token)
    {
        using var keys = await api.SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", token);
        Assert.Equal(HttpStatusCode.OK, keys.StatusCode);
        var quota = UsageQuota().Match(keys.Headers.GetValues("RateLimit").Single());
        Assert.True(quota.Success);
        return (int.Parse(quota.Groups["left"].Value, CultureInfo.InvariantCulture), int.Parse(quota.Groups["reset"].Value, CultureInfo.InvariantCulture));
    }

    private static async Task AssertEndpointRowAsync(ILocator row, string[] counts, double p50, double p95, double p99)
    {
        var cells = await row.Locator("td").AllTextContentsAsync();
        Assert.Equal(counts, cells.Take(5));
        // The API's percentiles are within 1%; the page shows three significant digits, up to 0.5% more.
        foreach (var (expected, shown) in new[] { p50, p95, p99 }.Zip(cells.Skip(5)))
        {
            var value = double.Parse(shown, NumberStyles.Float | NumberStyles.AllowThousands, CultureInfo.InvariantCulture);
            Assert.True(Math.Abs(value - expected) <= expected * 0.015, $"{string.Join(" | ", cells)}: {shown} is not within 1.5% of {expected}");
        }
    }

    /// <summary>The counts of the series table's row for <paramref name="label"/>, one cell per group (the table is in a
    /// closed <c>details</c>: hidden, yet in the page).</summary>
    private static ILocator SeriesRow(IPage page, string label) =>
        page.Locator("#series-numbers tbody tr")
            .Filter(new() { Has = page.GetByRole(AriaRole.Rowheader, new() { Name = label, Exact = true, IncludeHidden = true }) })
            .Locator("td");

    /// <summary>How the page names the hour of <paramref name="time"/> in <paramref name="zone"/>: "Tue 2 Dec 14:00".</summary>
    private static string HourLabel(DateTimeOffset time, string zone)
    {
        var local = TimeZoneInfo.ConvertTime(time, TimeZoneInfo.FindSystemTimeZoneById(zone));
        return local.AddTicks(-(local.Ticks % TimeSpan.TicksPerHour)).ToString("ddd d MMM HH:mm", CultureInfo.InvariantCulture);
    }

    /// <summary>Empty when the page fits the screen's width, else the elements that stick out.</summary>
    private static Task<string> WiderThanTheScreenAsync(IPage page) =>
        page.EvaluateAsync<string>("""
            () => {
              const width = document.documentElement.clientWidth;
              if (document.documentElement.scrollWidth <= width) return "";
              return [...document.querySelectorAll("body *")]
                .filter(element => element.getBoundingClientRect().right > width + 1)
                .slice(0, 5).map(element => `${element.tagName.toLowerCase()}.${element.className}`).join(", ") || "(unknown)";
            }
            """);

    [GeneratedRegex("^ak_[A-Za-z0-9_-]{43}$")]
    private static partial Regex ApiKeyShape();

    // A JWT's header and payload are base64url JSON objects, so each starts "eyJ"; "eyJ" alone turns up in random
    // base64 (an antiforgery token) about once in a thousand runs.
    [GeneratedRegex(@"eyJ[A-Za-z0-9_-]*\.eyJ")]
    private static partial Regex JwtShape();

    [GeneratedRegex("/usage$")]
    private static partial Regex UsagePath();

    [GeneratedRegex("/account/login")]
    private static partial Regex SignInPath();

    [GeneratedRegex("^Sign out")]
    private static partial Regex SignOutName();

    [GeneratedRegex("^\"usage\";r=(?<left>\\d+);t=(?<reset>\\d+)$")]
    private static partial Regex UsageQuota();

    public void Dispose() => TestDirectories.DeleteIfExists(_dataDirectory);
}
