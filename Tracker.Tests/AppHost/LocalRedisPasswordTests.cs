using System.Diagnostics;
using System.Runtime.Versioning;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Tracker.AppHost.Infrastructure;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.AppHost;

/// <summary>
/// In LocalProcesses mode the Redis password reaches redis-server through a config file only its owner can read,
/// never through a command line, which every local user can read in the process list.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class LocalRedisPasswordTests : IDisposable
{
    private readonly string _directory = TestDirectories.CreateNew("redis-password");
    private readonly string _password = "pass \"word\" \\ " + Guid.NewGuid().ToString("N");

    public void Dispose() => TestDirectories.DeleteIfExists(_directory);

    [Fact]
    public void The_redis_resource_runs_its_script_with_no_arguments_at_all()
    {
        var builder = DistributedApplication.CreateBuilder(new DistributedApplicationOptions
        {
            Args = [],
            DisableDashboard = true,
            ProjectDirectory = AppHostProcess.ProjectDirectory,
        });
        var cachePassword = builder.AddParameter("cache-password", _password, secret: true);
        var databasePassword = builder.AddParameter("postgres-password", Guid.NewGuid().ToString("N"), secret: true);

        LocalProcesses.Add(builder, new LocalServerBinaries("/usr/lib/postgresql/bin", "/usr/bin/redis-server"), _directory, databasePassword, cachePassword);

        var redis = Assert.Single(builder.Resources.OfType<LocalRedisResource>());
        Assert.Equal(Path.Combine(AppHostProcess.ProjectDirectory, "Infrastructure", "scripts", "run-redis.sh"), redis.Command);
        Assert.Empty(redis.Annotations.OfType<CommandLineArgsCallbackAnnotation>());
    }

    [Fact]
    public async Task The_redis_script_passes_the_server_only_a_config_file_that_holds_the_password_and_only_its_owner_can_read()
    {
        var argumentsFile = Path.Combine(_directory, "arguments");
        var server = Path.Combine(_directory, "redis-server");
        await File.WriteAllTextAsync(server, "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$TEST_ARGUMENTS_FILE\"\n");
        File.SetUnixFileMode(server, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var data = Path.Combine(_directory, "redis");
        var script = Path.Combine(AppHostProcess.ProjectDirectory, "Infrastructure", "scripts", "run-redis.sh");
        var start = new ProcessStartInfo("bash", [script]) { RedirectStandardError = true };
        start.Environment["TRACKER_REDIS_PORT"] = "6399";
        start.Environment["TRACKER_REDIS_SERVER"] = server;
        start.Environment["TRACKER_REDIS_DATA"] = data;
        start.Environment["TRACKER_REDIS_PASSWORD"] = _password;
        start.Environment["TEST_ARGUMENTS_FILE"] = argumentsFile;

        using var process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var errors = await process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);

        Assert.True(process.ExitCode == 0, errors);
        var config = Path.Combine(data, "redis.conf");
        Assert.Equal([config], await File.ReadAllLinesAsync(argumentsFile));
        var escaped = _password.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal);
        Assert.Contains($"requirepass \"{escaped}\"", await File.ReadAllLinesAsync(config));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(config));
    }
}
