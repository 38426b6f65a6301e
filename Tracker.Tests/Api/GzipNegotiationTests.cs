using System.IO.Compression;
using Microsoft.Extensions.Primitives;
using Tracker.ApiService.Http;

namespace Tracker.Tests.Api;

/// <summary>Which <c>Accept-Encoding</c> headers get a gzipped answer (RFC 9110, 12.5.3), and a gzipped body's length.</summary>
public sealed class GzipNegotiationTests
{
    [Theory]
    [InlineData("gzip", true)]
    [InlineData("GZip", true)]
    [InlineData("x-gzip", true)]
    [InlineData("gzip, deflate, br, zstd", true)]
    [InlineData("br;q=1.0, gzip;q=0.5", true)]
    [InlineData("*", true)]
    [InlineData("*;q=0, gzip", true)]
    [InlineData("gzip;q=0", false)]
    [InlineData("gzip;q=0.000", false)]
    [InlineData("gzip;q=0, *", false)]
    [InlineData("*;q=0", false)]
    [InlineData("identity", false)]
    [InlineData("br, deflate", false)]
    [InlineData("", false)]
    [InlineData("gzip;q=nonsense", false)]
    [InlineData("br;level=1, gzip", false)]
    [InlineData("gzip, gzip;q=0", true)]
    [InlineData("gzip;q=0, gzip", false)]
    public void Gzip_is_sent_only_where_a_header_that_parses_gives_it_a_weight_above_zero(string header, bool accepted)
    {
        Assert.Equal(accepted, JsonBody.AcceptsGzip(new StringValues(header)));
    }

    [Fact]
    public void No_header_means_the_identity_coding_only()
    {
        Assert.False(JsonBody.AcceptsGzip(StringValues.Empty));
    }

    [Fact]
    public void Headers_sent_as_several_fields_are_read_together()
    {
        Assert.True(JsonBody.AcceptsGzip(new StringValues(["br", "gzip"])));
        Assert.False(JsonBody.AcceptsGzip(new StringValues(["br", "gzip;q=0"])));
    }

    [Fact]
    public void A_gzipped_body_tells_its_decompressed_length()
    {
        var json = System.Text.Encoding.UTF8.GetBytes("{\"data\":[" + string.Join(',', Enumerable.Range(0, 5000)) + "]}");
        using var gzipped = new MemoryStream();
        using (var gzip = new GZipStream(gzipped, CompressionLevel.Optimal, leaveOpen: true))
        {
            gzip.Write(json);
        }

        Assert.Equal(json.Length, JsonBody.GzippedLength(gzipped.ToArray()));
    }
}
