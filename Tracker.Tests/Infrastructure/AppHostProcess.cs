using System.Diagnostics;
using System.Reflection;
using System.Text;

namespace Tracker.Tests.Infrastructure;

/// <summary>
/// The AppHost started the way the README starts it (<c>dotnet run --project Tracker.AppHost</c>, with its
/// launch profile), already built. Every process it starts is one of its <see cref="ChildProcesses"/> — also the
/// detached orchestrator and the servers it runs — and is killed when it is disposed, whatever the outcome.
/// Generated parameters persist into user secrets of its own, never into those a developer's runs share.
/// </summary>
internal sealed class AppHostProcess : IAsyncDisposable
{
    private const string DataDirectoryArgument = "--Tracker:DataDirectory=";

    private readonly ChildProcesses _children = new();
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly string _userSecretsRoot = TestDirectories.CreateNew("apphost-secrets");

    private AppHostProcess(IEnumerable<string> arguments)
    {
        var startInfo = new ProcessStartInfo("dotnet") { WorkingDirectory = ProjectDirectory };
        foreach (var argument in (string[])["run", "--project", ProjectDirectory, "--no-build", "-c", BuildConfiguration, "--", .. arguments])
        {
            startInfo.ArgumentList.Add(argument);
            if (argument.StartsWith(DataDirectoryArgument, StringComparison.Ordinal))
            {
                // The servers it runs there (redis-server hides the marker) are its processes too.
                _children.AlsoWorkingIn(argument[DataDirectoryArgument.Length..]);
            }
        }

        // User secrets live under APPDATA when it is set (then HOME): a directory of this run's own.
        startInfo.Environment["APPDATA"] = _userSecretsRoot;
        // The test machine may have these set for other work; the AppHost must pick its own.
        startInfo.Environment.Remove("ASPNETCORE_URLS");
        startInfo.Environment.Remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        _process = _children.Start(startInfo, Append);
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
    /// Every live process of this run — the AppHost, the orchestrator and what they started — or that works inside
    /// <paramref name="dataDirectory"/>.
    /// </summary>
    public IReadOnlyList<(int Pid, string CommandLine)> FindProcessesOfThisRun(string? dataDirectory = null) => _children.Find(dataDirectory);

    /// <summary>Where this run keeps its user secrets (generated parameters).</summary>
    public string UserSecretsRoot => _userSecretsRoot;

    public async ValueTask DisposeAsync()
    {
        try
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
        }
        finally
        {
            // Whatever the run left behind must not outlive it, whether or not the test failed.
            await _children.DisposeAsync();
            TestDirectories.DeleteIfExists(_userSecretsRoot);
        }
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
