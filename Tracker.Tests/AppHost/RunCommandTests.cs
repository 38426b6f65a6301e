using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Tracker.Tests.AppHost;

/// <summary>
/// The README's run command as a user runs it: it must bring up a healthy API without a container engine and a
/// dashboard that shows the system without warnings, and a SIGTERM must stop everything it started.
/// </summary>
[Collection(nameof(WholeSystem))]
public sealed partial class RunCommandTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan StartBudget = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan StopBudget = TimeSpan.FromSeconds(45);

    private readonly string _dataDirectory = TestDirectories.NewPath("run");

    [Fact]
    public async Task Run_command_serves_a_healthy_api_within_90_seconds_and_a_clean_dashboard_and_SIGTERM_leaves_no_process_behind()
    {
        var stopwatch = Stopwatch.StartNew();
        await using var appHost = AppHostProcess.Start($"--Tracker:DataDirectory={_dataDirectory}");

        var apiUrl = await WaitForHealthyApiAsync(appHost);
        output.WriteLine($"Run command to healthy API at {apiUrl}: {stopwatch.Elapsed.TotalSeconds:F1} s");
        var login = DashboardLogin().Match(appHost.Output);
        Assert.True(login.Success, appHost.Output);
        await DashboardView.AssertShowsTheSystemAsync(new Uri(login.Groups["url"].Value), output);
        Assert.DoesNotContain("development certificate", appHost.Output, StringComparison.Ordinal);

        var running = appHost.FindProcessesOfThisRun(_dataDirectory);
        Assert.Contains(running, process => process.CommandLine.Contains("postgres -D " + _dataDirectory, StringComparison.Ordinal));
        Assert.Contains(running, process => process.CommandLine.Contains("redis-server", StringComparison.Ordinal));
        Assert.Contains(running, process => process.CommandLine.Contains("Tracker.ApiService", StringComparison.Ordinal));

        stopwatch.Restart();
        await appHost.SendSigtermAsync();
        await appHost.WaitForExitAsync(StopBudget);

        IReadOnlyList<(int Pid, string CommandLine)> left;
        while ((left = appHost.FindProcessesOfThisRun(_dataDirectory)).Count > 0 && stopwatch.Elapsed < StopBudget)
        {
            await Task.Delay(250);
        }

        output.WriteLine($"SIGTERM to no process left: {stopwatch.Elapsed.TotalSeconds:F1} s");
        Assert.True(left.Count == 0, "Still running after SIGTERM:\n" + string.Join('\n', left.Select(process => $"{process.Pid} {process.CommandLine}")));
    }

    /// <summary>Finds the API process of this run, reads the URL the orchestrator gave it, and polls /health.</summary>
    private async Task<Uri> WaitForHealthyApiAsync(AppHostProcess appHost)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < StartBudget)
        {
            Assert.False(appHost.HasExited, "The AppHost exited early:\n" + appHost.Output);
            foreach (var (pid, commandLine) in appHost.FindProcessesOfThisRun())
            {
                if (!commandLine.Contains("Tracker.ApiService", StringComparison.Ordinal) || ReadUrls(pid) is not { } url)
                {
                    continue;
                }

                try
                {
                    using var response = await http.GetAsync(new Uri(url, "/health"));
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        return url;
                    }
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }
                catch (TaskCanceledException)
                {
                }
            }

            await Task.Delay(500);
        }

        output.WriteLine(appHost.Output);
        throw new TimeoutException($"No healthy API within {StartBudget.TotalSeconds} s.");
    }

    private static Uri? ReadUrls(int pid)
    {
        try
        {
            var environment = File.ReadAllText($"/proc/{pid}/environ");
            var match = UrlsVariable().Match(environment);
            return match.Success ? new Uri(match.Groups["url"].Value.Replace("localhost", "127.0.0.1", StringComparison.Ordinal)) : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    [GeneratedRegex(@"Login to the dashboard at (?<url>http://\S+)")]
    private static partial Regex DashboardLogin();

    [GeneratedRegex(@"ASPNETCORE_URLS=(?<url>http://[^;\0]+)")]
    private static partial Regex UrlsVariable();

    public void Dispose()
    {
        if (Directory.Exists(_dataDirectory))
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
    }
}
