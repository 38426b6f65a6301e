using Tracker.ApiService.Http;

namespace Tracker.Tests.Api;

public sealed class JsonErrorDescriberTests
{
    [Theory]
    [InlineData(null, "")]
    [InlineData("$", "")]
    [InlineData("$.ipAddress", "ipAddress")]
    [InlineData("$.logs[3].ipAddress", "logs[3].ipAddress")]
    [InlineData("$['odd name']", "odd name")]
    [InlineData("$.logs[0]['odd name']", "logs[0].odd name")]
    public void Json_paths_become_field_paths(string? jsonPath, string expected)
    {
        Assert.Equal(expected, JsonErrorDescriber.ToFieldPath(jsonPath));
    }
}
