using System.Diagnostics;
using System.Reflection;
using System.Text;

namespace Tracker.Tests.Infrastructure;

/// <summary>
/// The AppHost started the way the README starts it (<c>dotnet run --project Tracker.AppHost</c>, with its
/// launch profile), already built. Every process it starts inherits a marker variable, so the test can find
/// them all afterwards — also the detached orchestrator and the servers it runs.
/// </summary>
internal sealed class AppHostProcess : IAsyncDisposable
{
    private const string RunMarkerVariable = "TRACKER_TEST_RUN_ID";

    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly string _runId = Guid.NewGuid().ToString("N");

    private AppHostProcess(IEnumerable<string> arguments)
    {
        var startInfo = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = ProjectDirectory,
        };
        foreach (var argument in (string[])["run", "--project", ProjectDirectory, "--no-build", "-c", BuildConfiguration, "--", .. arguments])
        {
            startInfo.ArgumentList.Add(argument);
        }

        startInfo.Environment[RunMarkerVariable] = _runId;
        // The test machine may have these set for other work; the AppHost must pick its own.
        startInfo.Environment.Remove("ASPNETCORE_URLS");
        startInfo.Environment.Remove("OTEL_EXPORTER_OTLP_ENDPOINT");

        _process = new Process { StartInfo = startInfo };
        _process.OutputDataReceived += (_, line) => Append(line.Data);
        _process.ErrorDataReceived += (_, line) => Append(line.Data);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public static string ProjectDirectory =>
        Projects.Tracker_AppHost.ProjectPath.EndsWith(".csproj", StringComparison.Ordinal)
            ? Path.GetDirectoryName(Projects.Tracker_AppHost.ProjectPath)!
            : Projects.Tracker_AppHost.ProjectPath;

    /// <summary>The configuration this test assembly was built in; the AppHost was built in the same one.</summary>
    private static string BuildConfiguration =>
        typeof(AppHostProcess).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static AppHostProcess Start(params string[] arguments) => new(arguments);

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(deadline.Token);
        return _process.ExitCode;
    }

    /// <summary>What an orchestrator, systemd or Ctrl+C in a container sends to stop the app.</summary>
    public Task SendSigtermAsync() =>
        ProcessRunner.RunAsync("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10));

    /// <summary>
    /// Every live process that inherited this run's marker — the AppHost, the orchestrator and what they
    /// started — or that works inside <paramref name="dataDirectory"/>. The second test is needed for
    /// redis-server, which rewrites its process title over the memory /proc shows as its environment.
    /// </summary>
    public IReadOnlyList<(int Pid, string CommandLine)> FindProcessesOfThisRun(string? dataDirectory = null)
    {
        var marker = Encoding.UTF8.GetBytes($"{RunMarkerVariable}={_runId}");
        var found = new List<(int, string)>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            try
            {
                var environment = File.ReadAllBytes(Path.Combine(directory, "environ"));
                var inherited = environment.AsSpan().IndexOf(marker) >= 0;
                var worksInDataDirectory = dataDirectory is not null
                    && (new DirectoryInfo(Path.Combine(directory, "cwd")).ResolveLinkTarget(false)?.FullName ?? string.Empty)
                        .StartsWith(dataDirectory, StringComparison.Ordinal);
                if ((inherited || worksInDataDirectory) && !IsZombie(directory))
                {
                    var commandLine = File.ReadAllText(Path.Combine(directory, "cmdline")).Replace('\0', ' ').Trim();
                    found.Add((pid, commandLine));
                }
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
                // The process ended while we looked, or is not ours to read.
            }
        }

        return found;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            await SendSigtermAsync();
            try
            {
                await WaitForExitAsync(TimeSpan.FromSeconds(30));
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
            }
        }

        // Whatever the test left behind must not outlive it, whether or not the test failed.
        foreach (var (pid, _) in FindProcessesOfThisRun())
        {
            try
            {
                using var leftover = Process.GetProcessById(pid);
                leftover.Kill();
            }
            catch (ArgumentException)
            {
            }
        }

        _process.Dispose();
    }

    private static bool IsZombie(string procDirectory)
    {
        var status = File.ReadAllText(Path.Combine(procDirectory, "stat"));
        // Field 3, after the parenthesised command name, is the state; Z is a zombie awaiting its parent.
        var afterName = status[(status.LastIndexOf(')') + 2)..];
        return afterName.StartsWith('Z');
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }
}
