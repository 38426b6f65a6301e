using System.Diagnostics;

namespace Tracker.AppHost.Infrastructure;

/// <summary>
/// Asks the container engine Aspire would use whether its daemon answers. A CLI without a daemon (as on
/// machines with only the docker client) must count as "no engine": Aspire's containers would otherwise
/// stay unhealthy and everything waiting on them would wait forever.
/// </summary>
internal static class ContainerEngineProbe
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    public static bool IsAnswering(string? configuredRuntime)
    {
        // Aspire honours ASPIRE_CONTAINER_RUNTIME; without it, it uses docker.
        var runtime = string.IsNullOrWhiteSpace(configuredRuntime) ? "docker" : configuredRuntime.Trim();
        return RunsSuccessfully(runtime, "info --format {{.ServerVersion}}");
    }

    private static bool RunsSuccessfully(string fileName, string arguments)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(fileName, arguments)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            });
            if (process is null)
            {
                return false;
            }

            if (!process.WaitForExit(Timeout))
            {
                process.Kill(entireProcessTree: true);
                return false;
            }

            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // Not installed.
            return false;
        }
    }
}
