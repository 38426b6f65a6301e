using Npgsql;
using Tracker.AppHost.Infrastructure;

namespace Tracker.Tests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL cluster on a free loopback port, from the machine's own binaries — the same ones the
/// AppHost's LocalProcesses mode runs. It can be stopped and started again to test outages.
/// </summary>
public sealed class PostgresTestServer : IAsyncDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);

    private readonly string _binDirectory;
    private readonly string _dataDirectory;
    private readonly string? _runAs;

    private PostgresTestServer(string binDirectory, string dataDirectory, string? runAs, int port)
    {
        _binDirectory = binDirectory;
        _dataDirectory = dataDirectory;
        _runAs = runAs;
        Port = port;
    }

    public int Port { get; }

    /// <summary>Superuser connection to the <c>postgres</c> maintenance database; trust authentication on loopback.</summary>
    public string AdminConnectionString => ConnectionStringFor("postgres");

    public string ConnectionStringFor(string database) =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling=true;Timeout=5";

    public static async Task<PostgresTestServer> StartNewAsync()
    {
        var binDirectory = LocalServerBinaries.Find(Environment.GetEnvironmentVariable("TRACKER_PG_BIN"), null).PostgresBinDirectory
            ?? throw new InvalidOperationException("PostgreSQL is not installed; run ./test.sh, which installs it.");
        var runAs = Environment.UserName == "root" ? "postgres" : null;
        var dataDirectory = Path.Combine(Path.GetTempPath(), "tracker-tests", "pg-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dataDirectory);
        if (runAs is not null)
        {
            await ProcessRunner.RunAsync("chown", [$"{runAs}:{runAs}", dataDirectory], CommandTimeout);
        }

        var server = new PostgresTestServer(binDirectory, dataDirectory, runAs, FreePort.Next());
        await server.RunAsOwnerAsync("initdb", "-D", dataDirectory, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync");
        await server.StartAsync();
        return server;
    }

    /// <summary>Starts the server (again) on the same port and waits until it accepts connections.</summary>
    public async Task StartAsync()
    {
        // fsync off: these clusters are thrown away, and a clean stop still writes everything.
        var options = $"-p {Port} -k {_dataDirectory} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200";
        await RunAsOwnerAsync("pg_ctl", "-D", _dataDirectory, "-l", Path.Combine(_dataDirectory, "server.log"), "-o", options, "-w", "-t", "60", "start");
        // Connections pooled before a restart are dead; the tests' own helpers must not pick them up.
        NpgsqlConnection.ClearAllPools();
    }

    /// <summary>Stops the server at once, dropping its connections, as a crash or a failover would.</summary>
    public Task<string> StopAsync() => RunAsOwnerAsync("pg_ctl", "-D", _dataDirectory, "-m", "immediate", "-w", "stop");

    public async Task<string> CreateDatabaseAsync(string prefix)
    {
        var name = $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 33, 63)];
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await command.ExecuteNonQueryAsync();
        return name;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (InvalidOperationException)
        {
            // Already stopped by a test.
        }

        NpgsqlConnection.ClearAllPools();
        Directory.Delete(_dataDirectory, recursive: true);
    }

    private Task<string> RunAsOwnerAsync(string program, params string[] arguments)
    {
        var (fileName, argumentList) = ProcessRunner.AsUser(_runAs, Path.Combine(_binDirectory, program), arguments);
        return ProcessRunner.RunAsync(fileName, argumentList, CommandTimeout, workingDirectory: _dataDirectory);
    }
}
