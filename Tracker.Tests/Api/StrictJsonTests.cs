using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Tracker.ApiService.Http;
using static Tracker.Tests.Infrastructure.ProblemAssertions;

namespace Tracker.Tests.Api;

/// <summary>
/// The HTTP platform every capability's endpoints run on (strict JSON, body limits, ProblemDetails), tested on
/// Kestrel through a probe endpoint, so the rules are pinned down independently of any one capability.
/// </summary>
public sealed class StrictJsonTests : IAsyncLifetime
{
    private const int BodyLimit = 4096;

    private WebApplication _app = null!;
    private HttpClient _client = null!;

    public sealed record ProbeRequest(string? Name, int? Count, ProbeItem[]? Items);

    public sealed record ProbeItem(string? IpAddress);

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Configuration["RequestLimits:MaxRequestBodyBytes"] = BodyLimit.ToString(System.Globalization.CultureInfo.InvariantCulture);
        builder.AddHttpPlatform();

        _app = builder.Build();
        _app.UseHttpPlatform();
        _app.MapPost("/probe", (ProbeRequest request) => TypedResults.Ok(request));
        _app.MapGet("/boom", string () =>
            throw new InvalidOperationException("Host=db.internal;Password=hunter2 failed at Tracker.Secret"));
        await _app.StartAsync();

        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _client = new HttpClient { BaseAddress = new Uri(address) };
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _app.DisposeAsync();
    }

    [Fact]
    public async Task A_valid_body_is_accepted()
    {
        using var response = await PostJsonAsync("""{"name":"a","count":2,"items":[{"ipAddress":"::1"}]}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Malformed_json_is_a_400_that_says_where()
    {
        using var response = await PostJsonAsync("""{"name": "a",""");

        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.StartsWith("The request body is not valid JSON (line 1", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_property_is_rejected_by_name()
    {
        using var response = await PostJsonAsync("""{"name":"a","colour":"red"}""");

        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal(["'colour' is not a known property. Remove it or check its spelling."], ErrorsFor(problem, "colour"));
    }

    [Fact]
    public async Task An_unknown_property_inside_an_array_item_is_named_with_its_index()
    {
        using var response = await PostJsonAsync("""{"items":[{"ipAddress":"::1"},{"ipAddress":"::1","port":1}]}""");

        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Single(ErrorsFor(problem, "items[1].port"));
    }

    [Theory]
    [InlineData("[1,2]")]
    [InlineData("\"text\"")]
    [InlineData("42")]
    public async Task A_body_that_is_not_an_object_is_rejected(string body)
    {
        using var response = await PostJsonAsync(body);

        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("The request body must be a JSON object.", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_value_of_the_wrong_type_is_named()
    {
        using var response = await PostJsonAsync("""{"count":"five"}""");

        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal(["The value has the wrong JSON type for this field."], ErrorsFor(problem, "count"));
    }

    [Fact]
    public async Task A_repeated_property_is_rejected()
    {
        using var response = await PostJsonAsync("""{"name":"a","name":"b"}""");

        await AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task An_empty_body_is_a_400()
    {
        using var response = await PostJsonAsync(string.Empty);

        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("A JSON object is required as the request body.", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_non_json_content_type_is_a_415()
    {
        using var content = new StringContent("name=a", Encoding.UTF8, "application/x-www-form-urlencoded");
        using var response = await _client.PostAsync(new Uri("/probe", UriKind.Relative), content);

        await AssertProblemAsync(response, HttpStatusCode.UnsupportedMediaType);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_body_over_the_limit_is_a_413_naming_the_limit(bool chunked)
    {
        var body = $$"""{"name":"{{new string('x', BodyLimit)}}"}""";
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        if (chunked)
        {
            // Without a Content-Length the server can only find out while reading.
            using var request = new HttpRequestMessage(HttpMethod.Post, "/probe") { Content = content };
            request.Headers.TransferEncodingChunked = true;
            using var chunkedResponse = await _client.SendAsync(request);
            var chunkedProblem = await AssertProblemAsync(chunkedResponse, HttpStatusCode.RequestEntityTooLarge);
            Assert.Contains(BodyLimit.ToString(System.Globalization.CultureInfo.InvariantCulture), chunkedProblem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            return;
        }

        using var response = await _client.PostAsync(new Uri("/probe", UriKind.Relative), content);
        var problem = await AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal($"The request body is larger than the {BodyLimit} bytes allowed here.", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task An_unexpected_failure_is_a_500_that_reveals_nothing()
    {
        using var response = await _client.GetAsync(new Uri("/boom", UriKind.Relative));

        var problem = await AssertProblemAsync(response, HttpStatusCode.InternalServerError);
        var body = problem.GetRawText();
        Assert.DoesNotContain("hunter2", body, StringComparison.Ordinal);
        Assert.DoesNotContain("db.internal", body, StringComparison.Ordinal);
    }

    private Task<HttpResponseMessage> PostJsonAsync(string json)
    {
        var content = new StringContent(json, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return _client.PostAsync(new Uri("/probe", UriKind.Relative), content);
    }
}
