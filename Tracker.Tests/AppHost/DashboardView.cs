using Microsoft.Playwright;
using Tracker.Tests.Web;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Tracker.Tests.AppHost;

/// <summary>The Aspire dashboard as a person sees it after the README's run command, in a real headless Chromium.</summary>
internal static class DashboardView
{
    /// <summary>
    /// Signs in with the login URL the AppHost printed and checks the resources page: every resource in a real
    /// state (the database too), links that say what they lead to, and no warning about a development certificate
    /// (this machine has none). Takes the README's picture of it.
    /// </summary>
    public static async Task AssertShowsTheSystemAsync(Uri loginUrl, ITestOutputHelper output)
    {
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await HeadlessChromium.LaunchAsync(playwright);
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1400, Height = 640 } });
        page.SetDefaultTimeout(60_000);
        try
        {
            await page.GotoAsync(loginUrl.ToString());
            await Expect(page.GetByRole(AriaRole.Link, new() { Name = "API reference" })).ToBeVisibleAsync();
            await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Usage", Exact = true })).ToBeVisibleAsync();
            await Expect(Row(page, "migrations")).ToContainTextAsync("Finished");
            foreach (var resource in (string[])["postgres", "trackerdb", "cache", "api", "web"])
            {
                await Expect(Row(page, resource)).ToContainTextAsync("Running");
                await Expect(Row(page, resource)).Not.ToContainTextAsync("Unhealthy");
            }

            Assert.Equal(0, await page.GetByText("development certificate").CountAsync());
            await HeadlessChromium.SaveScreenshotAsync(page, "dashboard.png", fullPage: false);
        }
        catch
        {
            output.WriteLine($"Dashboard at {page.Url}:\n{await page.InnerTextAsync("body")}");
            throw;
        }
    }

    private static ILocator Row(IPage page, string resource) =>
        page.GetByRole(AriaRole.Row).Filter(new() { Has = page.GetByText(resource, new() { Exact = true }) });
}
