using System.Net;
using Tracker.ApiService.RateLimiting;

namespace Tracker.Tests.RateLimiting;

public sealed class ClientPartitionTests
{
    [Theory]
    [InlineData("198.51.100.7", "198.51.100.7")]
    [InlineData("::ffff:198.51.100.7", "198.51.100.7")]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:2::/64")]
    [InlineData("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64")]
    [InlineData("2001:db8:1:3::1", "2001:db8:1:3::/64")]
    [InlineData("fe80::1%2", "fe80::/64")]
    [InlineData("::1", "::/64")]
    public void IPv6_addresses_are_partitioned_per_64_bit_prefix_and_IPv4_mapped_ones_as_IPv4(string address, string partition) =>
        Assert.Equal(partition, ClientPartition.Of(IPAddress.Parse(address)));

    [Fact]
    public void A_connection_without_an_address_has_a_partition_of_its_own() =>
        Assert.Equal("unknown", ClientPartition.Of(null));
}
