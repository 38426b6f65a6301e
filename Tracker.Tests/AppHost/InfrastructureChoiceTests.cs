using Tracker.AppHost.Infrastructure;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.AppHost;

public sealed class InfrastructureChoiceTests
{
    [Fact]
    public async Task Missing_server_programs_stop_the_AppHost_at_once_with_what_to_install()
    {
        await using var appHost = AppHostProcess.Start(
            "--Tracker:Infrastructure=LocalProcesses", "--Tracker:LocalProcesses:RedisServer=/nonexistent/redis-server");
        var exitCode = await appHost.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(1, exitCode);
        Assert.Contains("this machine lacks redis-server", appHost.Output, StringComparison.Ordinal);
        Assert.Contains("sudo apt-get install -y postgresql redis-server", appHost.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", appHost.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_infrastructure_mode_is_refused_with_the_allowed_values()
    {
        await using var appHost = AppHostProcess.Start("--Tracker:Infrastructure=Kubernetes");
        var exitCode = await appHost.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(1, exitCode);
        Assert.Contains("Tracker:Infrastructure is 'Kubernetes'; use Containers, LocalProcesses or External.", appHost.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_container_runtime_that_is_not_installed_does_not_count_as_an_engine()
    {
        Assert.False(ContainerEngineProbe.IsAnswering("tracker-no-such-container-runtime"));
    }

    [Fact]
    public void The_machines_postgres_and_redis_are_found()
    {
        var binaries = LocalServerBinaries.Find(null, null);

        Assert.True(binaries.IsComplete, $"postgres: {binaries.PostgresBinDirectory}, redis: {binaries.RedisServer}");
        Assert.True(File.Exists(Path.Combine(binaries.PostgresBinDirectory!, "initdb")));
    }
}
