using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Tracker.AppHost.Infrastructure;

namespace Tracker.Tests.Infrastructure;

/// <summary>
/// A throwaway Redis on a free loopback port, from the machine's own redis-server; stoppable for outage tests.
/// It runs as a child of the test process (not daemonized), so a failed bind is an exit the test sees, and it is
/// known to be up only when the server answering on the port reports this process's id.
/// </summary>
public sealed class RedisTestServer : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(2);
    private const int PortAttempts = 5;

    private readonly string _redisServer;
    private readonly string _directory;
    private readonly Func<IReadOnlyList<string>> _chooseArguments;
    private IReadOnlyList<string> _arguments = [];
    private Process? _process;

    private RedisTestServer(string redisServer, string directory, Func<IReadOnlyList<string>> chooseArguments)
    {
        _redisServer = redisServer;
        _directory = directory;
        _chooseArguments = chooseArguments;
    }

    public int Port { get; private set; }

    /// <summary>Whether the server process this object started is running (not killed by a test).</summary>
    public bool IsRunning => _process is { HasExited: false };

    public string ConnectionString => $"127.0.0.1:{Port},abortConnect=false";

    /// <param name="extraArguments">Arguments beyond the port, directory and persistence ones, chosen anew for each
    /// attempt to bind (a cluster node's bus port is one more port that can be taken), then kept for restarts.</param>
    public static async Task<RedisTestServer> StartNewAsync(Func<IReadOnlyList<string>>? extraArguments = null)
    {
        var redisServer = LocalServerBinaries.Find(null, Environment.GetEnvironmentVariable("TRACKER_REDIS_SERVER")).RedisServer
            ?? throw new InvalidOperationException("redis-server is not installed; run ./test.sh, which installs it.");
        var server = new RedisTestServer(redisServer, TestDirectories.CreateNew("redis"), extraArguments ?? (() => []));
        try
        {
            // A free port can be taken by someone else before the server binds it: then try another.
            for (var attempt = 1; ; attempt++)
            {
                server.Port = FreePort.Next();
                server._arguments = server._chooseArguments();
                try
                {
                    await server.StartOnceAsync();
                    return server;
                }
                catch (PortTakenException) when (attempt < PortAttempts)
                {
                }
            }
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts the server again on <see cref="Port"/> (clients know no other) and waits until it answers as itself;
    /// if something took the port while it was down, retries for a while before failing.
    /// </summary>
    public async Task StartAsync()
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await StartOnceAsync();
                return;
            }
            catch (PortTakenException) when (attempt < PortAttempts)
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
        }
    }

    private async Task StartOnceAsync()
    {
        var startInfo = new ProcessStartInfo(_redisServer) { UseShellExecute = false, WorkingDirectory = _directory };
        foreach (var argument in (string[])
        [
            "--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", _directory, "--logfile", Path.Combine(_directory, "redis.log"),
            .. _arguments,
        ])
        {
            startInfo.ArgumentList.Add(argument);
        }

        var process = Process.Start(startInfo) ?? throw new InvalidOperationException("redis-server did not start.");
        _process = process;
        var stopwatch = Stopwatch.StartNew();
        while (await ProcessIdOnPortAsync() != process.Id)
        {
            if (process.HasExited)
            {
                _process = null;
                var log = File.Exists(LogFile) ? await File.ReadAllTextAsync(LogFile) : string.Empty;
                process.Dispose();
                throw log.Contains("Address already in use", StringComparison.Ordinal)
                    ? new PortTakenException(Port)
                    : new InvalidOperationException($"redis-server exited at start:\n{log}");
            }

            if (stopwatch.Elapsed > StartTimeout)
            {
                await StopAsync();
                throw new TimeoutException($"redis-server did not answer on port {Port} within {StartTimeout.TotalSeconds} s.");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Kills the server without saving, as a crash would.</summary>
    public async Task StopAsync()
    {
        if (_process is not { } process)
        {
            return;
        }

        _process = null;
        try
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        finally
        {
            process.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        finally
        {
            TestDirectories.DeleteIfExists(_directory);
        }
    }

    private string LogFile => Path.Combine(_directory, "redis.log");

    /// <summary>The <c>process_id</c> the server on <see cref="Port"/> reports, or null when none answers in time.</summary>
    private async Task<int?> ProcessIdOnPortAsync()
    {
        using var timeout = new CancellationTokenSource(PingTimeout);
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", Port, timeout.Token);
            var stream = client.GetStream();
            await stream.WriteAsync("INFO server\r\n"u8.ToArray(), timeout.Token);
            var reply = new StringBuilder();
            var buffer = new byte[4096];
            while (!reply.ToString().Contains("process_id:", StringComparison.Ordinal) || !reply.ToString().EndsWith("\r\n", StringComparison.Ordinal))
            {
                var read = await stream.ReadAsync(buffer, timeout.Token);
                if (read == 0)
                {
                    return null;
                }

                reply.Append(Encoding.ASCII.GetString(buffer, 0, read));
            }

            var line = reply.ToString().Split("\r\n").FirstOrDefault(entry => entry.StartsWith("process_id:", StringComparison.Ordinal));
            return line is null ? null : int.Parse(line["process_id:".Length..], CultureInfo.InvariantCulture);
        }
        catch (Exception exception) when (exception is SocketException or IOException or OperationCanceledException)
        {
            return null;
        }
    }

    private sealed class PortTakenException(int port) : Exception($"Port {port} was taken before redis-server bound it.");
}
