using System.Diagnostics;
using System.Net;
using System.Reflection;
using System.Security.Cryptography;
using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;
using static Tracker.Tests.Infrastructure.IngestClient;

namespace Tracker.Tests.Ingest;

/// <summary>The API as its own process, stopped with SIGTERM in the middle of a load, as an orchestrator stops it.</summary>
[Collection(nameof(RealServers))]
public sealed class SigtermTests(ServersFixture servers, ITestOutputHelper output)
{
    [Fact]
    public async Task SIGTERM_under_load_commits_every_acknowledged_log_and_exits_cleanly()
    {
        var database = await TestDatabase.CreateMigratedAsync(servers.Postgres);
        var port = FreePort.Next();
        using var api = StartApi(database, port);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        await WaitUntilHealthyAsync(http, api);
        var client = await http.RegisterNewAsync();

        var acknowledged = 0;
        var unexpected = new System.Collections.Concurrent.ConcurrentBag<HttpStatusCode>();
        var senders = Enumerable.Range(0, 32).Select(sender => Task.Run(async () =>
        {
            for (var sent = 0; sent < 20_000; sent++)
            {
                try
                {
                    using var response = await http.PostLogAsync(client.ApiKey, Log(endpoint: $"/sigterm/{sender}/{sent}"));
                    switch (response.StatusCode)
                    {
                        case HttpStatusCode.Created: Interlocked.Increment(ref acknowledged); break;
                        case HttpStatusCode.ServiceUnavailable: return; // shutting down: not acknowledged
                        default: unexpected.Add(response.StatusCode); return;
                    }
                }
                catch (Exception exception) when (exception is HttpRequestException or OperationCanceledException)
                {
                    return; // the process is gone; this request was not acknowledged
                }
            }
        })).ToList();

        await Task.Delay(TimeSpan.FromSeconds(2));
        await ProcessRunner.RunAsync("kill", ["-TERM", api.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(5));
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await api.WaitForExitAsync(deadline.Token);
        await Task.WhenAll(senders);

        output.WriteLine($"201 before SIGTERM took effect: {acknowledged}");
        Assert.Empty(unexpected);
        Assert.Equal(0, api.ExitCode);
        Assert.True(acknowledged > 100);
        Assert.Equal(acknowledged, await CountLogsAsync(database));
    }

    private Process StartApi(string databaseConnectionString, int port)
    {
        var configuration = typeof(SigtermTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        var root = Path.GetDirectoryName(AppHostProcess.ProjectDirectory)!;
        var startInfo = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        startInfo.ArgumentList.Add(Path.Combine(root, "Tracker.ApiService", "bin", configuration, "net10.0", "Tracker.ApiService.dll"));
        startInfo.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
        startInfo.Environment["ConnectionStrings__trackerdb"] = databaseConnectionString;
        startInfo.Environment["ConnectionStrings__cache"] = servers.Redis.ConnectionString;
        startInfo.Environment["Jwt__SigningKey"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(48));
        startInfo.Environment["Logging__LogLevel__Default"] = "Warning";
        // Thousands of logs a second from one key: far above the default ingest limit, which is not under test here.
        startInfo.Environment["RateLimiting__Ingest__TokensPerSecond"] = "1000000";
        startInfo.Environment["RateLimiting__Ingest__BurstLimit"] = "1000000";
        startInfo.Environment["RateLimiting__KeyPrefix"] = $"test-rate:sigterm:{port}:";
        startInfo.Environment.Remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        var process = Process.Start(startInfo)!;
        // Read and discard its output, so a full pipe never blocks it.
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static async Task WaitUntilHealthyAsync(HttpClient http, Process api)
    {
        var stopwatch = Stopwatch.StartNew();
        while (stopwatch.Elapsed < TimeSpan.FromSeconds(60))
        {
            Assert.False(api.HasExited, "the API exited at start");
            try
            {
                using var response = await http.GetAsync(new Uri("/health", UriKind.Relative));
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(200);
        }

        throw new TimeoutException("The API did not become healthy.");
    }
}
