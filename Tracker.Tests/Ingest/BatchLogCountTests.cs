using System.Text;
using System.Text.Json;
using Tracker.ApiService.Ingest;

namespace Tracker.Tests.Ingest;

public sealed class BatchLogCountTests
{
    private static int Count(string json) => BatchLogCount.Count(Encoding.UTF8.GetBytes(json));

    [Theory]
    [InlineData("""{"logs":[]}""", 0)]
    [InlineData("""{"logs":[{"endpoint":"/a"}]}""", 1)]
    [InlineData("""{"logs":[{"endpoint":"/a","nested":{"logs":[1,2,3]}},{"x":[[],[{}]]},{}]}""", 3)]
    [InlineData("""{"other":{"logs":[1,2]},"logs":[{},{}]}""", 2)]
    [InlineData("""{"logs":[{},{}],"after":[1,2,3]}""", 2)]
    [InlineData("""{"LOGS":[{},{},{}]}""", 3)]
    [InlineData("""{"\u006Cogs":[{},{}]}""", 2)]
    [InlineData("""{"logs":[1,"two",null,true]}""", 4)]
    [InlineData("""{"logs":{"a":1}}""", 0)]
    [InlineData("""{"log":[{},{}]}""", 0)]
    [InlineData("""[{},{}]""", 0)]
    [InlineData("""{"logs":[{},{},{"endpoint": }]}""", 2)]
    [InlineData("""{"logs":[{},{},{},""", 3)]
    [InlineData("", 0)]
    [InlineData("not json", 0)]
    public void Counts_the_elements_of_the_top_level_logs_array_up_to_the_first_malformed_token(string json, int expected) =>
        Assert.Equal(expected, Count(json));

    [Fact]
    public void Counts_what_the_binder_would_bind()
    {
        var logs = Enumerable.Range(0, 1000)
            .Select(index => new LogRequest("10.0.0.1", $"/items/{index}?q=\"{new string('é', index % 50)}\"", "GET", 1_700_000_000_000 + index))
            .ToArray();
        var json = JsonSerializer.SerializeToUtf8Bytes(new LogBatchRequest(logs), JsonSerializerOptions.Web);

        Assert.Equal(1000, BatchLogCount.Count(json));
    }
}
