using System.Net.Sockets;
using System.Text;
using Tracker.AppHost.Infrastructure;

namespace Tracker.Tests.Infrastructure;

/// <summary>A throwaway Redis on a free loopback port, from the machine's own redis-server; stoppable for outage tests.</summary>
public sealed class RedisTestServer : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    private readonly string _redisServer;
    private readonly string _directory;

    private RedisTestServer(string redisServer, string directory, int port)
    {
        _redisServer = redisServer;
        _directory = directory;
        Port = port;
    }

    public int Port { get; }

    public string ConnectionString => $"127.0.0.1:{Port},abortConnect=false";

    private string PidFile => Path.Combine(_directory, "redis.pid");

    public static async Task<RedisTestServer> StartNewAsync()
    {
        var redisServer = LocalServerBinaries.Find(null, Environment.GetEnvironmentVariable("TRACKER_REDIS_SERVER")).RedisServer
            ?? throw new InvalidOperationException("redis-server is not installed; run ./test.sh, which installs it.");
        var directory = Path.Combine(Path.GetTempPath(), "tracker-tests", "redis-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        var server = new RedisTestServer(redisServer, directory, FreePort.Next());
        await server.StartAsync();
        return server;
    }

    public async Task StartAsync()
    {
        await ProcessRunner.RunAsync(_redisServer,
        [
            "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "yes",
            "--pidfile", PidFile, "--dir", _directory, "--logfile", Path.Combine(_directory, "redis.log"),
        ], StartTimeout);
        using var deadline = new CancellationTokenSource(StartTimeout);
        while (!await AnswersPingAsync())
        {
            await Task.Delay(50, deadline.Token);
        }
    }

    /// <summary>Kills the server without saving, as a crash would.</summary>
    public async Task StopAsync()
    {
        if (!File.Exists(PidFile))
        {
            return;
        }

        var pid = int.Parse(await File.ReadAllTextAsync(PidFile), System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            process.Kill();
            await process.WaitForExitAsync();
        }
        catch (ArgumentException)
        {
            // Already gone.
        }

        File.Delete(PidFile);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Directory.Delete(_directory, recursive: true);
    }

    private async Task<bool> AnswersPingAsync()
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", Port);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray());
            var buffer = new byte[16];
            var read = await stream.ReadAsync(buffer);
            return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
