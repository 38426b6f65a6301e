using Microsoft.Playwright;

namespace Tracker.Tests.Web;

/// <summary>
/// Debian's <c>chromium</c> (which <c>test.sh</c> installs) driven by Playwright, as the browser tests use it, and the
/// README's pictures they take.
/// </summary>
internal static class HeadlessChromium
{
    private const string ChromiumPath = "/usr/bin/chromium";

    /// <summary>Where <c>TRACKER_SCREENSHOT_DIRECTORY=docs/images</c> puts the README's pictures.</summary>
    public const string ScreenshotDirectoryVariable = "TRACKER_SCREENSHOT_DIRECTORY";

    /// <summary>Launches the package's browser: Playwright's own browser downloads are never used.</summary>
    public static Task<IBrowser> LaunchAsync(IPlaywright playwright) =>
        playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Timeout = 60_000,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });

    /// <summary>
    /// Saves a screenshot for the README when <see cref="ScreenshotDirectoryVariable"/> is set
    /// (<c>TRACKER_SCREENSHOT_DIRECTORY=docs/images</c> refreshes the README's pictures).
    /// </summary>
    public static async Task SaveScreenshotAsync(IPage page, string fileName, bool fullPage = true)
    {
        if (Environment.GetEnvironmentVariable(ScreenshotDirectoryVariable) is { Length: > 0 } directory)
        {
            await page.ScreenshotAsync(new() { Path = Path.Combine(Path.GetFullPath(directory), fileName), FullPage = fullPage });
        }
    }
}
