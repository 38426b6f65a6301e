using System.Collections.Concurrent;
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
    private const int Senders = 32;

    [Fact]
    public async Task SIGTERM_under_load_commits_every_acknowledged_log_and_exits_cleanly()
    {
        var outcome = await StopUnderLoadAsync();

        Assert.Empty(outcome.Unexpected);
        Assert.Equal(0, outcome.RefusedBeforeSigterm);
        Assert.Equal(0, outcome.ExitCode);
        Assert.Equal(outcome.Acknowledged, outcome.Committed);
    }

    private sealed record Outcome(
        int Acknowledged, long Committed, int RefusedWhileDraining, int RefusedBeforeSigterm, int Dropped, int ExitCode, IReadOnlyCollection<string> Unexpected);

    /// <summary>
    /// Loads the API with single-event ingest from <see cref="Senders"/> connections, sends SIGTERM once 500 logs are
    /// acknowledged, and counts how every request ended; the process and its database are gone afterwards.
    /// </summary>
    private async Task<Outcome> StopUnderLoadAsync()
    {
        var database = await TestDatabase.CreateMigratedAsync(servers.Postgres);
        await using var children = new ChildProcesses();
        try
        {
            var (api, http) = await StartHealthyApiAsync(children, database);
            using var _ = http;
            var client = await http.RegisterNewAsync();

            var acknowledged = 0;
            var sigtermSent = 0;
            var refusedWhileDraining = 0;
            var refusedBeforeSigterm = 0;
            var dropped = 0;
            var unexpected = new ConcurrentBag<string>();
            var senders = Enumerable.Range(0, Senders).Select(sender => Task.Run(async () =>
            {
                for (var sent = 0; sent < 200_000; sent++)
                {
                    try
                    {
                        using var response = await http.PostLogAsync(client.ApiKey, Log(endpoint: $"/sigterm/{sender}/{sent}"));
                        switch (response.StatusCode)
                        {
                            case HttpStatusCode.Created:
                                Interlocked.Increment(ref acknowledged);
                                break;
                            case HttpStatusCode.ServiceUnavailable:
                                // Not acknowledged, so not stored; it must say when to come back.
                                Interlocked.Increment(ref Volatile.Read(ref sigtermSent) == 1 ? ref refusedWhileDraining : ref refusedBeforeSigterm);
                                if (response.Headers.RetryAfter is null)
                                {
                                    unexpected.Add("503 without Retry-After");
                                }

                                break;
                            default:
                                unexpected.Add($"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
                                return;
                        }
                    }
                    catch (Exception exception) when (exception is HttpRequestException or OperationCanceledException)
                    {
                        // The process stopped listening or is gone: this request was not acknowledged.
                        Interlocked.Increment(ref dropped);
                        return;
                    }
                }
            })).ToList();

            // Under load: enough acknowledged that the queue holds logs when the signal comes.
            await Poll.UntilAsync(() => Task.FromResult(Volatile.Read(ref acknowledged) >= 500 || senders.Any(task => task.IsCompleted)), TimeSpan.FromSeconds(60));
            Assert.True(senders.All(task => !task.IsCompleted), "A sender stopped before SIGTERM: " + string.Join(", ", unexpected));
            Volatile.Write(ref sigtermSent, 1);
            await ProcessRunner.RunAsync("kill", ["-TERM", ChildProcesses.Id(api)], TimeSpan.FromSeconds(5));
            using (var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
            {
                await api.WaitForExitAsync(deadline.Token);
            }

            await Task.WhenAll(senders).WaitAsync(TimeSpan.FromSeconds(30));

            output.WriteLine($"201: {acknowledged}; 503 while draining: {refusedWhileDraining}; 503 before: {refusedBeforeSigterm}; dropped: {dropped}");
            return new Outcome(acknowledged, await CountLogsAsync(database), refusedWhileDraining, refusedBeforeSigterm, dropped, api.ExitCode, unexpected);
        }
        finally
        {
            await TestDatabase.DropAsync(servers.Postgres, database);
        }
    }

    /// <summary>Starts the API on a free port (another if the port was taken before it bound it) and waits until it is healthy.</summary>
    private async Task<(Process Api, HttpClient Http)> StartHealthyApiAsync(ChildProcesses children, string database)
    {
        for (var attempt = 1; ; attempt++)
        {
            var port = FreePort.Next();
            var api = StartApi(children, database, port);
            var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
            try
            {
                await Poll.UntilAsync(async () =>
                {
                    if (api.HasExited)
                    {
                        throw new InvalidOperationException($"the API exited at start with {api.ExitCode}");
                    }

                    using var response = await http.GetAsync(new Uri("/health", UriKind.Relative));
                    return response.IsSuccessStatusCode;
                }, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(200));
                return (api, http);
            }
            catch (TimeoutException) when (api.HasExited && attempt < 3)
            {
                http.Dispose();
            }
        }
    }

    private Process StartApi(ChildProcesses children, string databaseConnectionString, int port)
    {
        var configuration = typeof(SigtermTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        var root = Path.GetDirectoryName(AppHostProcess.ProjectDirectory)!;
        var startInfo = new ProcessStartInfo("dotnet");
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
        startInfo.Environment["Caching__RedisInstanceName"] = $"test-cache:sigterm:{port}:";
        startInfo.Environment.Remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        // Its output is read and discarded, so a full pipe never blocks it.
        return children.Start(startInfo);
    }
}
