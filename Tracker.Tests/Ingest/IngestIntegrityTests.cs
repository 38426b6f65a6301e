using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Npgsql;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.ProblemAssertions;

namespace Tracker.Tests.Ingest;

/// <summary>
/// What is stored equals what was sent: a log the database would refuse, or that .NET would read differently
/// from how it was written, is a 400 naming the field, before it reaches the queue.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class IngestIntegrityTests(ServersFixture servers) : ApiTest(servers)
{
    [Theory]
    [InlineData("010.0.0.1")]
    [InlineData("08.1.1.1")]
    [InlineData("::ffff:010.0.0.1")]
    public async Task A_dotted_part_with_a_leading_zero_is_a_400_naming_ipAddress(string address)
    {
        var client = await Http.RegisterNewAsync();

        using var response = await Http.PostLogAsync(client.ApiKey, Log(ip: address));

        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.NotEmpty(ErrorsFor(problem, "ipAddress"));
        Assert.Equal(0, await CountLogsAsync(Factory.DatabaseConnectionString));
    }

    [Theory]
    [InlineData("/a\\u0000b")]
    [InlineData("/a\\ud800b")]
    [InlineData("/a\\udc00")]
    public async Task An_endpoint_PostgreSQL_cannot_store_is_a_400_naming_endpoint(string escapedEndpoint)
    {
        var client = await Http.RegisterNewAsync();
        var json = $$"""{"ipAddress":"203.0.113.7","endpoint":"{{escapedEndpoint}}","method":"GET","timestamp":{{DateTimeOffset.UtcNow.AddSeconds(-1).ToUnixTimeMilliseconds()}}}""";

        using var response = await PostRawAsync(client.ApiKey, json);

        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.NotEmpty(ErrorsFor(problem, "endpoint"));
        Assert.Equal(0, await CountLogsAsync(Factory.DatabaseConnectionString));
    }

    [Fact]
    public async Task An_endpoint_of_2048_characters_outside_the_BMP_is_stored_as_sent()
    {
        var client = await Http.RegisterNewAsync();
        var endpoint = string.Concat(Enumerable.Repeat("\U0001F600", 2048));

        using var response = await Http.PostLogAsync(client.ApiKey, Log(endpoint: endpoint));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        await using var connection = new NpgsqlConnection(Factory.DatabaseConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT endpoint FROM logs", connection);
        Assert.Equal(endpoint, (string?)await command.ExecuteScalarAsync());
    }

    private async Task<HttpResponseMessage> PostRawAsync(string apiKey, string json)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/logs")
        {
            Content = new StringContent(json, Encoding.UTF8, new MediaTypeHeaderValue("application/json")),
        };
        request.Headers.TryAddWithoutValidation("X-API-Key", apiKey);
        return await Http.SendAsync(request);
    }
}
