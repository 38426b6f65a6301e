using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Tracker.Tests.Infrastructure;

/// <summary>
/// Every process a test starts, and every process those start: each inherits a marker variable, so they are found
/// again even when detached from their parent (the orchestrator, daemonized servers). A server that rewrites its
/// process title over its environment (redis-server) is found by the directory it works in instead.
/// <see cref="KillAllAsync"/> ends them all, whatever the test's outcome.
/// </summary>
internal sealed class ChildProcesses : IAsyncDisposable
{
    private const string MarkerVariable = "TRACKER_TEST_RUN_ID";

    private readonly string _runId = Guid.NewGuid().ToString("N");
    private readonly List<string> _directories = [];
    private readonly List<Process> _started = [];

    /// <summary>Marks <paramref name="startInfo"/> so its process and all it starts belong to this set.</summary>
    public ProcessStartInfo Mark(ProcessStartInfo startInfo)
    {
        startInfo.Environment[MarkerVariable] = _runId;
        return startInfo;
    }

    /// <summary>Also counts every process working inside <paramref name="directory"/> as one of this set.</summary>
    public void AlsoWorkingIn(string directory) => _directories.Add(directory);

    /// <summary>
    /// Starts a process of this set whose output is read as it comes: standard output line by line to
    /// <paramref name="onStandardOutput"/>, standard error to <paramref name="onStandardError"/> (else to the same).
    /// Unmarked (<paramref name="mark"/> false), what it starts is found only while it is its descendant or works in
    /// a directory of this set: for a process that builds, whose build servers outlive it and serve other builds.
    /// </summary>
    public Process Start(
        ProcessStartInfo startInfo, Action<string>? onStandardOutput = null, Action<string>? onStandardError = null, bool mark = true)
    {
        startInfo.RedirectStandardOutput = true;
        startInfo.RedirectStandardError = true;
        startInfo.UseShellExecute = false;
        var process = new Process { StartInfo = mark ? Mark(startInfo) : startInfo };
        _started.Add(process);
        onStandardError ??= onStandardOutput;
        process.OutputDataReceived += (_, line) => Keep(onStandardOutput, line.Data);
        process.ErrorDataReceived += (_, line) => Keep(onStandardError, line.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;

        static void Keep(Action<string>? onLine, string? line)
        {
            if (line is not null)
            {
                onLine?.Invoke(line);
            }
        }
    }

    /// <summary>Every live process of this set (zombies, already dead, are left to their parents).</summary>
    public IReadOnlyList<(int Pid, string CommandLine)> Find(string? alsoWorkingIn = null)
    {
        var marker = Encoding.UTF8.GetBytes($"{MarkerVariable}={_runId}\0");
        string[] directories = alsoWorkingIn is null ? [.. _directories] : [.. _directories, alsoWorkingIn];
        var found = new List<(int, string)>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            try
            {
                var inherited = File.ReadAllBytes(Path.Combine(directory, "environ")).AsSpan().IndexOf(marker) >= 0;
                var workingDirectory = new DirectoryInfo(Path.Combine(directory, "cwd")).ResolveLinkTarget(false)?.FullName ?? string.Empty;
                var worksInside = directories.Any(inside => IsInside(workingDirectory, inside));
                if ((inherited || worksInside) && !IsZombie(directory))
                {
                    found.Add((pid, File.ReadAllText(Path.Combine(directory, "cmdline")).Replace('\0', ' ').Trim()));
                }
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
                // The process ended while we looked, or is not ours to read.
            }
        }

        return found;
    }

    /// <summary>
    /// Kills every process of this set with SIGKILL, again and again until none is left (a supervisor may start
    /// another while it dies), for at most <paramref name="timeout"/>; returns what was still running then.
    /// </summary>
    public async Task<IReadOnlyList<(int Pid, string CommandLine)>> KillAllAsync(TimeSpan timeout)
    {
        foreach (var process in _started)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // It has exited (its descendants, if detached, are found below).
            }
        }

        var stopwatch = Stopwatch.StartNew();
        IReadOnlyList<(int Pid, string CommandLine)> left;
        while ((left = Find()).Count > 0 && stopwatch.Elapsed < timeout)
        {
            foreach (var (pid, _) in left)
            {
                Kill(pid);
            }

            await Task.Delay(100);
        }

        return left;
    }

    /// <summary>Kills every process of this set and releases those it started (callers do not dispose them).</summary>
    public async ValueTask DisposeAsync()
    {
        var left = await KillAllAsync(TimeSpan.FromSeconds(30));
        _started.ForEach(process => process.Dispose());
        if (left.Count > 0)
        {
            throw new InvalidOperationException(
                "Processes of the test still run after 30 s of SIGKILL:\n" + string.Join('\n', left.Select(process => $"{process.Pid} {process.CommandLine}")));
        }
    }

    private static void Kill(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill();
        }
        catch (Exception exception) when (exception is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // Already gone, or gone while we looked.
        }
    }

    private static bool IsInside(string path, string directory) =>
        path.Length > 0 && (path == directory || path.StartsWith(directory.TrimEnd('/') + "/", StringComparison.Ordinal));

    private static bool IsZombie(string procDirectory)
    {
        var status = File.ReadAllText(Path.Combine(procDirectory, "stat"));
        // Field 3, after the parenthesised command name, is the state; Z is a zombie awaiting its parent.
        return status[(status.LastIndexOf(')') + 2)..].StartsWith('Z');
    }

    /// <summary>The process id as a command-line argument.</summary>
    public static string Id(Process process) => process.Id.ToString(CultureInfo.InvariantCulture);
}
