using System.Diagnostics;
using System.Reflection;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.Migrations;

/// <summary>The migration worker as the AppHost runs it: a process whose exit code says whether the API may start.</summary>
[Collection(nameof(RealServers))]
public sealed class MigrationWorkerTests(ServersFixture servers)
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Worker_creates_the_database_applies_migrations_and_exits_zero_twice_in_a_row()
    {
        var database = $"tracker_worker_{Guid.NewGuid():N}"[..40];
        var connectionString = servers.Postgres.ConnectionStringFor(database);

        await using var model = TestDatabase.CreateContext(connectionString);
        var migrations = model.Database.GetMigrations().Count();

        try
        {
            await RunTwiceAsync(connectionString, migrations);
        }
        finally
        {
            await servers.Postgres.DropDatabaseAsync(database);
        }
    }

    private static async Task RunTwiceAsync(string connectionString, int migrations)
    {
        var (firstExit, firstOutput) = await RunWorkerAsync(connectionString);
        Assert.True(firstExit == 0, firstOutput);
        Assert.Contains($"Database is up to date with {migrations} migration(s)", firstOutput, StringComparison.Ordinal);

        // A second run (every AppHost start) finds nothing to do and still succeeds.
        var (secondExit, secondOutput) = await RunWorkerAsync(connectionString);
        Assert.True(secondExit == 0, secondOutput);

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM \"__EFMigrationsHistory\"", connection);
        Assert.Equal((long)migrations, (long)(await command.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task Worker_that_cannot_migrate_exits_non_zero_with_the_reason_in_its_log()
    {
        // A role that does not exist is refused at once (not a transient fault, so no retries).
        var connectionString = $"Host=127.0.0.1;Port={servers.Postgres.Port};Username=no_such_role;Database=trackerdb;Timeout=5";

        var (exitCode, output) = await RunWorkerAsync(connectionString);

        Assert.Equal(1, exitCode);
        Assert.Contains("Database migration failed; the API will not start", output, StringComparison.Ordinal);
        Assert.Contains("no_such_role", output, StringComparison.Ordinal);
    }

    private static async Task<(int ExitCode, string Output)> RunWorkerAsync(string connectionString)
    {
        var project = Path.Combine(Path.GetDirectoryName(AppHostProcess.ProjectDirectory)!, "Tracker.MigrationService");
        var configuration = typeof(MigrationWorkerTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        var startInfo = new ProcessStartInfo("dotnet");
        foreach (var argument in (string[])["run", "--project", project, "--no-build", "-c", configuration, "--no-launch-profile"])
        {
            startInfo.ArgumentList.Add(argument);
        }

        startInfo.Environment["ConnectionStrings__trackerdb"] = connectionString;
        startInfo.Environment.Remove("OTEL_EXPORTER_OTLP_ENDPOINT");

        // dotnet run and the worker it starts are killed whatever happens, a timeout included.
        await using var children = new ChildProcesses();
        var output = new System.Text.StringBuilder();
        var process = children.Start(startInfo, line =>
        {
            lock (output)
            {
                output.AppendLine(line);
            }
        });
        using var deadline = new CancellationTokenSource(RunTimeout);
        await process.WaitForExitAsync(deadline.Token);
        lock (output)
        {
            return (process.ExitCode, output.ToString());
        }
    }
}
