using System.Net;

namespace Tracker.ApiService.Http;

/// <summary>
/// Proxies whose <c>X-Forwarded-For</c> and <c>X-Forwarded-Proto</c> are believed (<c>ForwardedHeaders</c>
/// section). Empty by default: the client IP — what the login rate limit is partitioned by — is then the peer's
/// address, and a client cannot pick its own bucket by sending the header.
/// </summary>
public sealed class TrustedProxiesOptions
{
    public const string SectionName = "ForwardedHeaders";

    /// <summary>Addresses ("10.0.0.4") or networks ("10.0.0.0/16") of the proxies in front of the API.</summary>
    public IList<string> TrustedProxies { get; } = [];

    /// <summary>Parses <see cref="TrustedProxies"/>; an entry that is neither an address nor a network is refused.</summary>
    public bool TryParse(out List<IPNetwork> networks, out string? invalid)
    {
        networks = [];
        invalid = null;
        foreach (var entry in TrustedProxies)
        {
            if (IPNetwork.TryParse(entry, out var network))
            {
                networks.Add(network);
            }
            else if (IPAddress.TryParse(entry, out var address))
            {
                networks.Add(new IPNetwork(address, address.GetAddressBytes().Length * 8));
            }
            else
            {
                invalid = entry;
                return false;
            }
        }

        return true;
    }
}
