using System.Net;

namespace Tracker.ApiService.Http;

/// <summary>
/// Proxies whose <c>X-Forwarded-For</c> and <c>X-Forwarded-Proto</c> are believed (<c>ForwardedHeaders</c>
/// section). None by default: the client IP — what the per-IP rate limits are partitioned by — is then the peer's
/// address, and a client cannot pick its own bucket by sending the header. Only the last hop is ever believed
/// (the entry the proxy itself appended); earlier entries are the client's own words.
/// </summary>
public sealed class TrustedProxiesOptions
{
    public const string SectionName = "ForwardedHeaders";

    /// <summary>Addresses ("10.0.0.4") or networks ("10.0.0.0/16") of the proxies in front of the API.</summary>
    public IList<string> TrustedProxies { get; } = [];

    /// <summary>
    /// Believe the one proxy in front whatever its address: for a platform ingress (Azure Container Apps) whose
    /// address is not known in advance and which every request passes, so no caller can reach the API around it.
    /// </summary>
    public bool TrustAllProxies { get; set; }

    /// <summary>Whether forwarded headers are read at all.</summary>
    public bool Enabled => TrustAllProxies || TrustedProxies.Count > 0;

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
