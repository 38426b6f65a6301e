using System.Diagnostics;
using Microsoft.Extensions.Configuration;

namespace Tracker.AppHost.Infrastructure;

/// <summary>
/// On Debian and Ubuntu, installs the PostgreSQL and Redis packages that LocalProcesses mode finds missing, so
/// the README's one command brings the system up on a fresh machine. It runs <c>scripts/install-packages.sh</c>,
/// the script <c>test.sh</c> uses: apt-get as root or through sudo, without starting the packages' services.
/// <c>Tracker:LocalProcesses:InstallMissing=false</c> refuses; the AppHost then says what to install instead.
/// </summary>
internal static class LocalServerInstaller
{
    public const string InstallSetting = "Tracker:LocalProcesses:InstallMissing";

    /// <summary>
    /// The Debian packages to install for what <paramref name="found"/> lacks; empty when nothing is missing,
    /// installing is refused or cannot help: not a Debian-like machine, or the missing program was configured
    /// to be somewhere particular (a package does not put it there).
    /// </summary>
    internal static IReadOnlyList<string> PackagesToInstall(
        LocalServerBinaries found, IConfiguration configuration, bool aptGetAvailable, out string? problem)
    {
        problem = null;
        if (found.IsComplete || !aptGetAvailable)
        {
            return [];
        }

        var setting = configuration[InstallSetting];
        if (!string.IsNullOrWhiteSpace(setting))
        {
            if (!bool.TryParse(setting, out var install))
            {
                problem = $"{InstallSetting} is '{setting}'; use true or false.";
                return [];
            }

            if (!install)
            {
                return [];
            }
        }

        var packages = new List<string>();
        if (found.PostgresBinDirectory is null && configuration[LocalServerBinaries.PostgresBinDirectorySetting] is null)
        {
            packages.Add("postgresql");
        }

        if (found.RedisServer is null && configuration[LocalServerBinaries.RedisServerSetting] is null)
        {
            packages.Add("redis-server");
        }

        return packages;
    }

    /// <summary>
    /// Runs the install script with the console's input and output, so apt-get's errors and a sudo password
    /// prompt reach the person who ran the AppHost. False, with what went wrong, when it fails.
    /// </summary>
    public static bool TryInstall(string scriptsDirectory, IReadOnlyList<string> packages, out string? problem)
    {
        Console.WriteLine(
            $"PostgreSQL and Redis run from this machine's own programs, and {string.Join(" and ", packages)} "
            + $"{(packages.Count == 1 ? "is" : "are")} missing: installing with apt-get (their system services are not started). "
            + $"Set {InstallSetting}=false to install nothing.");
        var start = new ProcessStartInfo(Path.Combine(scriptsDirectory, "install-packages.sh"), packages) { UseShellExecute = false };
        using var process = Process.Start(start)!;
        process.WaitForExit();
        problem = process.ExitCode == 0
            ? null
            : $"Installing {string.Join(" and ", packages)} with apt-get failed (exit code {process.ExitCode}); see above. "
                + $"Install them yourself, or set {InstallSetting}=false to be told the other ways.";
        return problem is null;
    }
}
