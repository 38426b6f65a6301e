using System.Net;
using System.Net.Sockets;

namespace Tracker.Tests.Infrastructure;

/// <summary>
/// A loopback port nobody listens on right now, never handed out twice by this process: tests never assume the
/// usual ports are free.
/// </summary>
/// <remarks>
/// Binding to port 0 would be simpler, but the kernel answers from its ephemeral range, the range every outgoing
/// connection's local end also comes from, and it may answer the same port again before the first caller's server
/// has bound it. Between the probe and the server's own bind either can take the port ("address already in use",
/// met by the benchmark's twin of this in CI run 41). Ports below the ephemeral range are never used for outgoing
/// connections, and the ports already given keep two servers of this process from being given the same one.
/// </remarks>
internal static class FreePort
{
    private static readonly HashSet<int> Given = [];

    public static int Next()
    {
        var (low, high) = Pool();
        lock (Given)
        {
            for (var attempt = 0; attempt < 1_000; attempt++)
            {
                var port = Random.Shared.Next(low, high);
                if (Given.Contains(port) || !Free(port))
                {
                    continue;
                }

                Given.Add(port);
                return port;
            }
        }

        throw new InvalidOperationException($"No free loopback port in {low}–{high} after 1,000 attempts.");
    }

    private static (int Low, int High) Pool()
    {
        // Linux says where its ephemeral range starts; elsewhere the IANA range (49152 up) is assumed.
        var ephemeralLow = 49_152;
        const string range = "/proc/sys/net/ipv4/ip_local_port_range";
        if (File.Exists(range))
        {
            ephemeralLow = int.Parse(File.ReadAllText(range).Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries)[0], System.Globalization.CultureInfo.InvariantCulture);
        }

        return ephemeralLow > 11_000 ? (10_000, ephemeralLow) : (1_024, 65_536);
    }

    private static bool Free(int port)
    {
        try
        {
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
