using System.Net;
using System.Net.Sockets;

namespace Tracker.ApiService.RateLimiting;

/// <summary>
/// The partition of every per-IP limit. An IPv6 caller is limited per /64: that is the smallest network a
/// provider hands out, so a single caller can pick any address in it, and a per-address limit would be one bucket
/// per request. An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer) is its IPv4 address.
/// </summary>
public static class ClientPartition
{
    /// <summary>The partition of <paramref name="address"/>: the IPv4 address, or the IPv6 /64 (<c>2001:db8::/64</c>).</summary>
    public static string Of(IPAddress? address)
    {
        if (address is null)
        {
            return "unknown";
        }

        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4().ToString();
        }

        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }

        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes) + "/64";
    }
}
