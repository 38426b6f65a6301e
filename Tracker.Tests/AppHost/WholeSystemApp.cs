using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;

namespace Tracker.Tests.AppHost;

/// <summary>Starts the whole system through Aspire.Hosting.Testing the way the whole-system tests need it.</summary>
internal static class WholeSystemApp
{
    private static readonly string[] SecretParameters = ["jwt-signing-key", "postgres-password", "cache-password"];

    /// <summary>
    /// Builds and starts the AppHost with <paramref name="arguments"/>, secrets of this run's own and no telemetry
    /// export, after <paramref name="configure"/> (say, settings for one resource); the caller disposes the
    /// application, which stops every resource.
    /// </summary>
    public static async Task<DistributedApplication> StartAsync(
        string[] arguments, CancellationToken cancellationToken, Action<IDistributedApplicationTestingBuilder>? configure = null)
    {
        // Secrets of this run's own, given as parameters, so nothing is generated into the user secrets that a
        // developer's own runs of the AppHost share.
        string[] secrets = [.. SecretParameters.Select(parameter => $"Parameters:{parameter}={Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32))}")];
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Tracker_AppHost>([.. arguments, .. secrets], cancellationToken);
        foreach (var project in builder.Resources.OfType<ProjectResource>())
        {
            // No dashboard runs under test: exporting telemetry would only make every process retry on exit.
            builder.CreateResourceBuilder(project).WithEnvironment(context => context.EnvironmentVariables.Remove("OTEL_EXPORTER_OTLP_ENDPOINT"));
        }

        configure?.Invoke(builder);
        var app = await builder.BuildAsync(cancellationToken);
        try
        {
            await app.StartAsync(cancellationToken);
            return app;
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }
}
