using System.Net;
using System.Net.Sockets;

namespace Tracker.Tests.Infrastructure;

/// <summary>A loopback port nobody listens on right now: tests never assume the usual ports are free.</summary>
internal static class FreePort
{
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
