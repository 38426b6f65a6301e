using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Tracker.Tests.Infrastructure;

/// <summary>
/// A loopback TCP proxy in front of a real server that can cut the connections it carries and refuse new ones:
/// the network failing between the API and PostgreSQL, while the server itself goes on (for example, finishing a
/// COMMIT whose client is gone) — which stopping the server cannot show.
/// </summary>
public sealed class FaultyTcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _targetPort;
    private readonly ConcurrentDictionary<Socket, Socket> _live = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public FaultyTcpProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        _accepting = Task.Run(AcceptAsync);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>While true, a new connection is accepted and closed at once, as if the server were unreachable.</summary>
    public bool RefuseNew { get; set; }

    /// <summary>Resets every connection the proxy carries now, on both sides.</summary>
    public void CutAll()
    {
        foreach (var (client, server) in _live)
        {
            Reset(client);
            Reset(server);
            _live.TryRemove(client, out _);
        }
    }

    /// <summary>The connection string <paramref name="direct"/> rewritten to go through this proxy.</summary>
    public string Route(string direct) =>
        new Npgsql.NpgsqlConnectionStringBuilder(direct) { Host = "127.0.0.1", Port = Port }.ConnectionString;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        CutAll();
        await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception exception) when (exception is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            if (RefuseNew)
            {
                Reset(client);
                continue;
            }

            var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await server.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
            }
            catch (Exception exception) when (exception is OperationCanceledException or SocketException)
            {
                Reset(client);
                server.Dispose();
                continue;
            }

            _live[client] = server;
            _ = PumpAsync(client, server);
            _ = PumpAsync(server, client);
        }
    }

    private async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (read == 0)
                {
                    break;
                }

                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, _stop.Token);
            }
        }
        catch (Exception exception) when (exception is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Cut, or the other side went away.
        }

        Reset(from);
        Reset(to);
    }

    // A reset, not a graceful close: the peer learns of it at once, as when a network path dies with an error.
    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
