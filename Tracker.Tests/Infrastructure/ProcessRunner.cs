using System.Diagnostics;

namespace Tracker.Tests.Infrastructure;

/// <summary>Runs a command to completion with a deadline and fails with its output when it fails.</summary>
internal static class ProcessRunner
{
    public static async Task<string> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout, string? workingDirectory = null)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        using var process = Process.Start(startInfo) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', startInfo.ArgumentList)} did not finish within {timeout}.");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{fileName} {string.Join(' ', startInfo.ArgumentList)} exited with {process.ExitCode}:\n{await output}\n{await error}");
        }

        return await output;
    }

    /// <summary>Prefixes a command so it runs as the given user when the tests run as root (PostgreSQL refuses root).</summary>
    public static (string FileName, List<string> Arguments) AsUser(string? user, string fileName, params string[] arguments)
    {
        if (user is null)
        {
            return (fileName, [.. arguments]);
        }

        return ("setpriv", ["--reuid=" + user, "--regid=" + user, "--init-groups", fileName, .. arguments]);
    }
}
