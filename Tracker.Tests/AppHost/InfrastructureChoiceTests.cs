using Microsoft.Extensions.Configuration;
using Tracker.AppHost.Infrastructure;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.AppHost;

[Collection(nameof(WholeSystem))]
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

    [Theory]
    [InlineData("LocalProcesses", "LocalProcesses")]
    [InlineData("containers", "Containers")]
    [InlineData("EXTERNAL", "External")]
    public void A_configured_mode_wins_over_detection(string configured, string expected)
    {
        var mode = Choose(new() { ["Tracker:Infrastructure"] = configured, ["ConnectionStrings:trackerdb"] = "x", ["ConnectionStrings:cache"] = "y" }, engineAnswers: true);

        Assert.Equal(expected, mode.ToString());
    }

    [Fact]
    public void Both_connection_strings_mean_external_servers_without_asking_for_an_engine()
    {
        var mode = Choose(new() { ["ConnectionStrings:trackerdb"] = "Host=db", ["ConnectionStrings:cache"] = "redis:6379" }, engineAnswers: null);

        Assert.Equal(InfrastructureMode.External, mode);
    }

    [Fact]
    public void One_connection_string_alone_is_not_enough_for_external()
    {
        Assert.Equal(InfrastructureMode.LocalProcesses, Choose(new() { ["ConnectionStrings:trackerdb"] = "Host=db" }, engineAnswers: false));
    }

    [Fact]
    public void An_answering_container_engine_means_containers()
    {
        Assert.Equal(InfrastructureMode.Containers, Choose([], engineAnswers: true));
    }

    [Fact]
    public void Without_an_engine_the_machines_own_servers_run()
    {
        Assert.Equal(InfrastructureMode.LocalProcesses, Choose([], engineAnswers: false));
    }

    [Fact]
    public void The_engine_probed_is_the_one_Aspire_is_told_to_use()
    {
        string? probed = null;
        TrackerInfrastructure.ChooseMode(
            Configuration(new() { ["ASPIRE_CONTAINER_RUNTIME"] = "podman" }), runtime => { probed = runtime; return false; }, out _);

        Assert.Equal("podman", probed);
    }

    /// <param name="settings">The AppHost configuration.</param>
    /// <param name="engineAnswers">What the engine probe says; null when the probe must not be called at all.</param>
    private static InfrastructureMode? Choose(Dictionary<string, string?> settings, bool? engineAnswers)
    {
        var mode = TrackerInfrastructure.ChooseMode(
            Configuration(settings),
            _ => engineAnswers ?? throw new InvalidOperationException("The engine must not be probed here."),
            out var problem);
        Assert.Null(problem);
        return mode;
    }

    private static IConfiguration Configuration(Dictionary<string, string?> settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build();

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
