using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Tracker.Tests.Infrastructure;

/// <summary>A registered client as the tests use it: credentials minted through the API itself.</summary>
public sealed record RegisteredClient(Guid Id, string Email, string Password, string ApiKey);

/// <summary>Calls the API the way a REST client would.</summary>
public static class ApiClient
{
    public const string StrongPassword = "Correct-horse-1";

    public static string UniqueEmail(string prefix = "client") => $"{prefix}.{Guid.NewGuid():N}@example.com";

    public static Task<HttpResponseMessage> RegisterAsync(this HttpClient http, object body) =>
        http.PostAsJsonAsync("/api/v1/auth/register", body);

    public static async Task<RegisteredClient> RegisterNewAsync(this HttpClient http, string? email = null)
    {
        email ??= UniqueEmail();
        using var response = await http.RegisterAsync(new { name = "Test Client", email, password = StrongPassword });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, body);
        var data = JsonDocument.Parse(body).RootElement.GetProperty("data");
        return new RegisteredClient(data.GetProperty("clientId").GetGuid(), email, StrongPassword, data.GetProperty("apiKey").GetString()!);
    }

    public static Task<HttpResponseMessage> LoginAsync(this HttpClient http, string email, string password) =>
        http.PostAsJsonAsync("/api/v1/auth/login", new { email, password });

    public static async Task<string> LoginTokenAsync(this HttpClient http, RegisteredClient client)
    {
        using var response = await http.LoginAsync(client.Email, client.Password);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("data").GetProperty("token").GetProperty("accessToken").GetString()!;
    }

    public static async Task<HttpResponseMessage> SendWithTokenAsync(this HttpClient http, HttpMethod method, string path, string? token, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (token is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + token);
        }

        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        return await http.SendAsync(request);
    }

    public static async Task<HttpResponseMessage> GetWithApiKeyAsync(this HttpClient http, string path, string apiKey, bool asBearer = false)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (asBearer)
        {
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + apiKey);
        }
        else
        {
            request.Headers.TryAddWithoutValidation("X-API-Key", apiKey);
        }

        return await http.SendAsync(request);
    }

    public static async Task<JsonElement> DataAsync(HttpResponseMessage response, HttpStatusCode expected)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"Expected {(int)expected}, got {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("data").Clone();
    }
}
