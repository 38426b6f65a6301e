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

    private const int PortAttempts = 5;

    private PostgresTestServer(string binDirectory, string dataDirectory, string? runAs)
    {
        _binDirectory = binDirectory;
        _dataDirectory = dataDirectory;
        _runAs = runAs;
    }

    public int Port { get; private set; }

    /// <summary>Superuser connection to the <c>postgres</c> maintenance database; trust authentication on loopback.</summary>
    public string AdminConnectionString => ConnectionStringFor("postgres");

    public string ConnectionStringFor(string database) =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling=true;Timeout=5";

    public static async Task<PostgresTestServer> StartNewAsync()
    {
        var binDirectory = LocalServerBinaries.Find(Environment.GetEnvironmentVariable("TRACKER_PG_BIN"), null).PostgresBinDirectory
            ?? throw new InvalidOperationException("PostgreSQL is not installed; run ./test.sh, which installs it.");
        var runAs = Environment.UserName == "root" ? "postgres" : null;
        var server = new PostgresTestServer(binDirectory, TestDirectories.CreateNew("pg"), runAs);
        try
        {
            if (runAs is not null)
            {
                await ProcessRunner.RunAsync("chown", [$"{runAs}:{runAs}", server._dataDirectory], CommandTimeout);
            }

            await server.RunAsOwnerAsync("initdb", "-D", server._dataDirectory, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync");
            // A free port can be taken by someone else before the server binds it: then the postmaster exits at
            // once (its only listen address failed) and pg_ctl says so; try another.
            for (var attempt = 1; ; attempt++)
            {
                server.Port = FreePort.Next();
                try
                {
                    await server.StartOnceAsync();
                    break;
                }
                catch (InvalidOperationException) when (attempt < PortAttempts)
                {
                }
            }

            await server.AssertIsThisServerAsync();
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts the server again on the same port (clients know no other) and waits until it accepts connections; if
    /// something took the port while it was down, retries for a while before failing.
    /// </summary>
    public async Task StartAsync()
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await StartOnceAsync();
                await AssertIsThisServerAsync();
                return;
            }
            catch (InvalidOperationException) when (attempt < PortAttempts)
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
        }
    }

    private async Task StartOnceAsync()
    {
        // fsync off: these clusters are thrown away, and a clean stop still writes everything. pg_stat_statements: tests
        // count the rows a statement returned to the API.
        var options = $"-p {Port} -k {_dataDirectory} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200"
            + " -c shared_preload_libraries=pg_stat_statements";
        await RunAsOwnerAsync("pg_ctl", "-D", _dataDirectory, "-l", Path.Combine(_dataDirectory, "server.log"), "-o", options, "-w", "-t", "60", "start");
        // Connections pooled before a restart are dead; the tests' own helpers must not pick them up.
        NpgsqlConnection.ClearAllPools();
    }

    /// <summary>Stops the server at once, dropping its connections, as a crash or a failover would.</summary>
    public Task<string> StopAsync() => RunAsOwnerAsync("pg_ctl", "-D", _dataDirectory, "-m", "immediate", "-w", "stop");

    /// <summary>Drops <paramref name="database"/> (ending its sessions) and empties the pools that reach it.</summary>
    public async Task DropDatabaseAsync(string database)
    {
        NpgsqlConnection.ClearPool(new NpgsqlConnection(ConnectionStringFor(database)));
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Creates a database named after <paramref name="prefix"/>: empty, or a copy of <paramref name="template"/>.</summary>
    public async Task<string> CreateDatabaseAsync(string prefix, string? template = null)
    {
        var name = $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 33, 63)];
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        var copy = template is null ? "" : $" TEMPLATE \"{template}\"";
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"{copy}", connection);
        await command.ExecuteNonQueryAsync();
        return name;
    }

    /// <summary>Stops the server (by SIGKILL if pg_ctl fails or hangs) and deletes its data directory, whatever happens.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (File.Exists(PostmasterPidFile))
            {
                await StopAsync();
            }
        }
        catch (Exception exception) when (exception is InvalidOperationException or TimeoutException)
        {
            KillPostmaster();
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            TestDirectories.DeleteIfExists(_dataDirectory);
        }
    }

    private string PostmasterPidFile => Path.Combine(_dataDirectory, "postmaster.pid");

    /// <summary>Ends the postmaster and its backends at once, when pg_ctl cannot.</summary>
    private void KillPostmaster()
    {
        try
        {
            var pid = int.Parse(File.ReadLines(PostmasterPidFile).First(), System.Globalization.CultureInfo.InvariantCulture);
            using var postmaster = System.Diagnostics.Process.GetProcessById(pid);
            postmaster.Kill(entireProcessTree: true);
            postmaster.WaitForExit(10_000);
        }
        catch (Exception exception) when (exception is IOException or ArgumentException or InvalidOperationException or FormatException)
        {
            // No postmaster is left to kill.
        }
    }

    /// <summary>The server answering on <see cref="Port"/> must be the one running from this data directory.</summary>
    private async Task AssertIsThisServerAsync()
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SHOW data_directory", connection);
        var dataDirectory = (string?)await command.ExecuteScalarAsync();
        if (dataDirectory != _dataDirectory)
        {
            throw new InvalidOperationException($"Port {Port} is served from {dataDirectory}, not from {_dataDirectory}.");
        }
    }

    private Task<string> RunAsOwnerAsync(string program, params string[] arguments)
    {
        var (fileName, argumentList) = ProcessRunner.AsUser(_runAs, Path.Combine(_binDirectory, program), arguments);
        return ProcessRunner.RunAsync(fileName, argumentList, CommandTimeout, workingDirectory: _dataDirectory);
    }
}
