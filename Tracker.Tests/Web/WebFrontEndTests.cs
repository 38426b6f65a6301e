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

    private readonly string _dataDirectory = TestDirectories.NewPath("web");

    [Fact]
    public async Task A_newcomer_registers_signs_in_sees_a_log_arrive_revokes_the_key_and_signs_out()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var app = await WholeSystemApp.StartAsync(
            ["Tracker:Infrastructure=LocalProcesses", $"Tracker:DataDirectory={_dataDirectory}"], timeout.Token);
        var notifications = app.Services.GetRequiredService<ResourceNotificationService>();
        await notifications.WaitForResourceHealthyAsync("web", timeout.Token);
        using var api = app.CreateHttpClient("api");

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await HeadlessChromium.LaunchAsync(playwright);
        await using var context = await browser.NewContextAsync(new()
        {
            BaseURL = app.GetEndpoint("web", "http").ToString(),
            Permissions = ["clipboard-read", "clipboard-write"],
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
            await WalkThroughAsync(page, context, api, timeout.Token);
            Assert.Empty(browserErrors);
        }
        catch
        {
            output.WriteLine($"Failed on {page.Url}; browser errors: {string.Join("; ", browserErrors)}\n{await page.ContentAsync()}");
            throw;
        }
    }

    private static async Task WalkThroughAsync(IPage page, IBrowserContext context, HttpClient api, CancellationToken cancellationToken)
    {
        var email = $"owner-{Guid.NewGuid():N}@example.com";
        const string Password = "Correct-horse-1";

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
        Assert.DoesNotContain("eyJ", await page.EvaluateAsync<string>("() => document.cookie + JSON.stringify(localStorage) + document.documentElement.outerHTML"), StringComparison.Ordinal);

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
                timestamp = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            });
            using var stored = await api.SendAsync(log, cancellationToken);
            Assert.Equal(HttpStatusCode.Created, stored.StatusCode);
        }

        await Expect(page.Locator("#usage-total")).ToHaveTextAsync("1 request in the last 7 days.", new() { Timeout = 30_000 });
        await Expect(page.Locator("#top-clients")).ToContainTextAsync("Browser Test Co (you)");
        await HeadlessChromium.SaveScreenshotAsync(page, "web-usage.png");

        // Readable at phone width: nothing wider than the screen (tables scroll inside their own box).
        await page.SetViewportSizeAsync(360, 740);
        Assert.Equal("", await WiderThanTheScreenAsync(page));
        await page.GotoAsync("/keys");
        Assert.Equal("", await WiderThanTheScreenAsync(page));
        await page.SetViewportSizeAsync(1280, 800);

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

    [GeneratedRegex("/usage$")]
    private static partial Regex UsagePath();

    [GeneratedRegex("/account/login")]
    private static partial Regex SignInPath();

    [GeneratedRegex("^Sign out")]
    private static partial Regex SignOutName();

    public void Dispose() => TestDirectories.DeleteIfExists(_dataDirectory);
}
