using System.Text.Json;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.AppHost;

/// <summary>The manifest azd deploys from: it must describe the five resources, as containers and projects.</summary>
[Collection(nameof(WholeSystem))]
public sealed class ManifestTests : IDisposable
{
    private readonly string _outputDirectory = TestDirectories.NewPath("manifest");

    [Fact]
    public async Task Manifest_publish_describes_postgres_cache_migrations_api_and_web()
    {
        var manifestPath = Path.Combine(_outputDirectory, "aspire-manifest.json");
        await using var appHost = AppHostProcess.Start("--publisher", "manifest", "--output-path", manifestPath);
        var exitCode = await appHost.WaitForExitAsync(TimeSpan.FromSeconds(120));
        Assert.True(exitCode == 0, appHost.Output);

        using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(manifestPath));
        var resources = manifest.RootElement.GetProperty("resources");

        Assert.StartsWith("container.", Type(resources, "postgres"), StringComparison.Ordinal);
        Assert.Equal("value.v0", Type(resources, "trackerdb"));
        Assert.StartsWith("container.", Type(resources, "cache"), StringComparison.Ordinal);
        Assert.StartsWith("project.", Type(resources, "migrations"), StringComparison.Ordinal);
        Assert.StartsWith("project.", Type(resources, "api"), StringComparison.Ordinal);

        // Secrets are inputs generated at deploy time, never values in the manifest.
        var manifestText = manifest.RootElement.GetRawText();
        Assert.Contains("\"jwt-signing-key\"", manifestText, StringComparison.Ordinal);
        Assert.True(resources.GetProperty("jwt-signing-key").GetProperty("inputs").GetProperty("value").GetProperty("secret").GetBoolean());
        var apiEnvironment = resources.GetProperty("api").GetProperty("env");
        Assert.Equal("{jwt-signing-key.value}", apiEnvironment.GetProperty("Jwt__SigningKey").GetString());
        Assert.Equal("{trackerdb.connectionString}", apiEnvironment.GetProperty("ConnectionStrings__trackerdb").GetString());
        Assert.Equal("{cache.connectionString}", apiEnvironment.GetProperty("ConnectionStrings__cache").GetString());

        // The web front end: a project with its own external ingress, finding the API by service discovery and
        // keeping its data-protection keys in the same Redis.
        Assert.StartsWith("project.", Type(resources, "web"), StringComparison.Ordinal);
        var web = resources.GetProperty("web");
        Assert.True(web.GetProperty("bindings").GetProperty("http").GetProperty("external").GetBoolean());
        var webEnvironment = web.GetProperty("env");
        Assert.Equal("{api.bindings.http.url}", webEnvironment.GetProperty("services__api__http__0").GetString());
        Assert.Equal("{cache.connectionString}", webEnvironment.GetProperty("ConnectionStrings__cache").GetString());
        Assert.Equal("true", webEnvironment.GetProperty("ASPNETCORE_FORWARDEDHEADERS_ENABLED").GetString());
        Assert.False(webEnvironment.TryGetProperty("Jwt__SigningKey", out _), "The web front end never needs the signing key.");
    }

    private static string? Type(JsonElement resources, string name) =>
        resources.TryGetProperty(name, out var resource) ? resource.GetProperty("type").GetString() : null;

    public void Dispose()
    {
        if (Directory.Exists(_outputDirectory))
        {
            Directory.Delete(_outputDirectory, recursive: true);
        }
    }
}
