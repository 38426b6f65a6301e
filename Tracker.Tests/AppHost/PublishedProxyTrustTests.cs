using System.Text.Json;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.AppHost;

/// <summary>
/// The published API sits behind the platform's ingress, whose address is not known in advance: the manifest
/// tells it to believe the ingress's <c>X-Forwarded-For</c>, so callers are told apart by their own IP.
/// </summary>
public sealed class PublishedProxyTrustTests : IDisposable
{
    private readonly string _outputDirectory = Path.Combine(Path.GetTempPath(), "tracker-tests", "manifest-" + Guid.NewGuid().ToString("N")[..12]);

    [Fact]
    public async Task The_published_api_trusts_the_ingress_forwarded_header()
    {
        var manifestPath = Path.Combine(_outputDirectory, "aspire-manifest.json");
        await using var appHost = AppHostProcess.Start("--publisher", "manifest", "--output-path", manifestPath);
        var exitCode = await appHost.WaitForExitAsync(TimeSpan.FromSeconds(120));
        Assert.True(exitCode == 0, appHost.Output);

        using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(manifestPath));
        var resources = manifest.RootElement.GetProperty("resources");
        Assert.Equal("true", resources.GetProperty("api").GetProperty("env").GetProperty("ForwardedHeaders__TrustAllProxies").GetString());
        Assert.False(resources.GetProperty("migrations").GetProperty("env").TryGetProperty("ForwardedHeaders__TrustAllProxies", out _));
    }

    public void Dispose()
    {
        if (Directory.Exists(_outputDirectory))
        {
            Directory.Delete(_outputDirectory, recursive: true);
        }
    }
}
