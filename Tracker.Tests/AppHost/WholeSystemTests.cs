using System.Diagnostics;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Tracker.Tests.AppHost;

/// <summary>The whole system through Aspire.Hosting.Testing, on this machine's own PostgreSQL and Redis.</summary>
[Collection(nameof(WholeSystem))]
public sealed class WholeSystemTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(120);

    private readonly string _dataDirectory = TestDirectories.NewPath("apphost");

    [Fact]
    public Task AppHost_runs_migrations_then_serves_a_healthy_api_and_web_front_end_on_local_servers() =>
        AssertSystemComesUpAsync(["Tracker:Infrastructure=LocalProcesses", $"Tracker:DataDirectory={_dataDirectory}"], output);

    /// <summary>Starts the AppHost with <paramref name="arguments"/> and checks the worker, the API, the schema and the web front end.</summary>
    internal static async Task AssertSystemComesUpAsync(string[] arguments, ITestOutputHelper output)
    {
        using var timeout = new CancellationTokenSource(StartTimeout);
        var stopwatch = Stopwatch.StartNew();
        await using var app = await WholeSystemApp.StartAsync(arguments, timeout.Token);
        var notifications = app.Services.GetRequiredService<ResourceNotificationService>();

        var migrations = await notifications.WaitForResourceAsync(
            "migrations", resource => KnownResourceStates.TerminalStates.Contains(resource.Snapshot.State?.Text), timeout.Token);
        Assert.Equal(KnownResourceStates.Finished, migrations.Snapshot.State?.Text);
        Assert.Equal(0, migrations.Snapshot.ExitCode);

        await notifications.WaitForResourceHealthyAsync("api", timeout.Token);
        output.WriteLine($"AppHost start to healthy API: {stopwatch.Elapsed.TotalSeconds:F1} s");

        using var http = app.CreateHttpClient("api");
        using var health = await http.GetAsync(new Uri("/health", UriKind.Relative), timeout.Token);
        Assert.Equal(System.Net.HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("Healthy", await health.Content.ReadAsStringAsync(timeout.Token));

        var connectionString = await app.GetConnectionStringAsync("trackerdb", timeout.Token);
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(timeout.Token);
        await using var command = new NpgsqlCommand(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name", connection);
        var tables = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync(timeout.Token))
        {
            while (await reader.ReadAsync(timeout.Token))
            {
                tables.Add(reader.GetString(0));
            }
        }

        Assert.Contains("clients", tables);
        Assert.Contains("api_keys", tables);
        Assert.Contains("logs", tables);
        Assert.Contains("usage_hourly", tables);
        Assert.Contains("__EFMigrationsHistory", tables);

        // The web front end starts after the API and is healthy once it answers (its readiness includes Redis).
        await notifications.WaitForResourceHealthyAsync("web", timeout.Token);
        using var web = app.CreateHttpClient("web");
        using var signIn = await web.GetAsync(new Uri("/account/login", UriKind.Relative), timeout.Token);
        Assert.Equal(System.Net.HttpStatusCode.OK, signIn.StatusCode);
    }

    public void Dispose()
    {
        if (Directory.Exists(_dataDirectory))
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
    }
}
