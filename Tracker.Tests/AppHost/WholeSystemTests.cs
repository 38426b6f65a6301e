using System.Diagnostics;
using Aspire.Hosting;
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
    private static readonly string[] SecretParameters = ["jwt-signing-key", "postgres-password", "cache-password"];

    private readonly string _dataDirectory = TestDirectories.NewPath("apphost");

    [Fact]
    public Task AppHost_runs_migrations_then_serves_a_healthy_api_on_local_servers() =>
        AssertSystemComesUpAsync(["Tracker:Infrastructure=LocalProcesses", $"Tracker:DataDirectory={_dataDirectory}"], output);

    /// <summary>Starts the AppHost with <paramref name="arguments"/> and checks the worker, the API and the schema.</summary>
    internal static async Task AssertSystemComesUpAsync(string[] arguments, ITestOutputHelper output)
    {
        using var timeout = new CancellationTokenSource(StartTimeout);
        var stopwatch = Stopwatch.StartNew();
        // Secrets of this run's own, given as parameters, so nothing is generated into the user secrets that a
        // developer's own runs of the AppHost share.
        string[] secrets = [.. SecretParameters.Select(parameter => $"Parameters:{parameter}={Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32))}")];
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Tracker_AppHost>([.. arguments, .. secrets], timeout.Token);
        foreach (var project in builder.Resources.OfType<ProjectResource>())
        {
            // No dashboard runs under test: exporting telemetry would only make every process retry on exit.
            builder.CreateResourceBuilder(project).WithEnvironment(context => context.EnvironmentVariables.Remove("OTEL_EXPORTER_OTLP_ENDPOINT"));
        }

        await using var app = await builder.BuildAsync(timeout.Token);
        await app.StartAsync(timeout.Token);
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
    }

    public void Dispose()
    {
        if (Directory.Exists(_dataDirectory))
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
    }
}
