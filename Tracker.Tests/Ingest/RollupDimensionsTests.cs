using Tracker.ApiService.Ingest;

namespace Tracker.Tests.Ingest;

/// <summary>The rule that keeps the detailed rollups' cells bounded: ids, queries, long paths and odd methods.</summary>
public sealed class RollupDimensionsTests
{
    [Theory]
    [InlineData("/v1/orders", "/v1/orders")]
    [InlineData("/v1/orders/42", "/v1/orders/{id}")]
    [InlineData("/v1/orders/42/items/7?expand=all#top", "/v1/orders/{id}/items/{id}")]
    [InlineData("/users/6f1c2a0e-1b5d-4c7e-9a3f-2d8b4e6c1a90", "/users/{id}")]
    [InlineData("/users/6F1C2A0E1B5D4C7E9A3F2D8B4E6C1A90/avatar", "/users/{id}/avatar")]
    [InlineData("/blobs/deadbeefdeadbeef", "/blobs/{id}")]
    [InlineData("/tokens/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/tokens/{id}")]
    [InlineData("/v2/health-check", "/v2/health-check")]
    [InlineData("/api/abcdefabcdef", "/api/abcdefabcdef")]
    [InlineData("/search?q=123", "/search")]
    [InlineData("orders/1", "orders/{id}")]
    [InlineData("/", "/")]
    [InlineData("?only=query", "{other}")]
    public void Id_like_segments_and_the_query_are_normalised(string endpoint, string expected) =>
        Assert.Equal(expected, RollupDimensions.Endpoint(endpoint));

    [Fact]
    public void An_endpoint_longer_than_a_cell_keeps_counts_as_other()
    {
        Assert.Equal("{other}", RollupDimensions.Endpoint("/" + new string('x', 256)));
        Assert.Equal("/" + new string('x', 255), RollupDimensions.Endpoint("/" + new string('x', 255)));
        // What counts is the name after its ids are replaced: a long id shrinks it under the limit, short ones grow it
        // past.
        Assert.Equal("/users/{id}", RollupDimensions.Endpoint("/users/" + new string('7', 300)));
        var grows = "/" + string.Join('/', Enumerable.Repeat("1", 127));
        Assert.Equal(254, grows.Length);
        Assert.Equal("{other}", RollupDimensions.Endpoint(grows));
        Assert.Equal(string.Concat(Enumerable.Repeat("/{id}", 51)), RollupDimensions.Endpoint(string.Concat(Enumerable.Repeat("/1", 51))));
    }

    [Fact]
    public void An_unchanged_endpoint_is_the_same_string()
    {
        const string endpoint = "/v1/orders";
        Assert.Same(endpoint, RollupDimensions.Endpoint(endpoint));
    }

    [Theory]
    [InlineData("GET", "GET")]
    [InlineData("PATCH", "PATCH")]
    [InlineData("PURGE", "OTHER")]
    [InlineData("X-CUSTOM", "OTHER")]
    public void Methods_other_than_the_standard_ones_share_a_cell(string method, string expected) =>
        Assert.Equal(expected, RollupDimensions.Method(method));

    [Theory]
    [InlineData(null, 0)]
    [InlineData((short)100, 1)]
    [InlineData((short)204, 2)]
    [InlineData((short)404, 4)]
    [InlineData((short)599, 5)]
    public void The_status_class_is_the_hundreds_or_zero_without_a_code(short? status, short expected) =>
        Assert.Equal(expected, RollupDimensions.StatusClass(status));
}
