using Microsoft.Extensions.Configuration;
using Tracker.AppHost.Infrastructure;

namespace Tracker.Tests.AppHost;

/// <summary>When LocalProcesses mode installs PostgreSQL and Redis itself, and when it says what to install instead.</summary>
public sealed class LocalServerInstallerTests
{
    private static readonly LocalServerBinaries Nothing = new(null, null);
    private static readonly LocalServerBinaries OnlyPostgres = new("/usr/lib/postgresql/15/bin", null);

    [Fact]
    public void A_debian_machine_without_the_programs_gets_both_packages()
    {
        Assert.Equal(["postgresql", "redis-server"], Packages(Nothing, [], aptGet: true));
    }

    [Fact]
    public void Only_the_missing_program_is_installed()
    {
        Assert.Equal(["redis-server"], Packages(OnlyPostgres, [], aptGet: true));
    }

    [Fact]
    public void Nothing_is_installed_when_both_programs_are_there()
    {
        Assert.Empty(Packages(new("/usr/lib/postgresql/15/bin", "/usr/bin/redis-server"), [], aptGet: true));
    }

    [Fact]
    public void Without_apt_get_nothing_is_installed_and_the_AppHost_says_what_to_install()
    {
        Assert.Empty(Packages(Nothing, [], aptGet: false));
    }

    [Theory]
    [InlineData("false")]
    [InlineData("False")]
    public void The_setting_refuses_installing(string setting)
    {
        Assert.Empty(Packages(Nothing, new() { [LocalServerInstaller.InstallSetting] = setting }, aptGet: true));
    }

    [Fact]
    public void The_setting_may_say_yes_explicitly()
    {
        Assert.Equal(["postgresql", "redis-server"], Packages(Nothing, new() { [LocalServerInstaller.InstallSetting] = "true" }, aptGet: true));
    }

    [Fact]
    public void A_program_configured_to_be_somewhere_else_is_not_installed_since_a_package_would_not_put_it_there()
    {
        var settings = new Dictionary<string, string?> { [LocalServerBinaries.RedisServerSetting] = "/opt/redis/bin/redis-server" };

        Assert.Empty(Packages(OnlyPostgres, settings, aptGet: true));
    }

    [Fact]
    public void A_setting_that_is_neither_true_nor_false_is_refused_by_name()
    {
        var configuration = Configuration(new() { [LocalServerInstaller.InstallSetting] = "sometimes" });

        Assert.Empty(LocalServerInstaller.PackagesToInstall(Nothing, configuration, aptGetAvailable: true, out var problem));
        Assert.Equal("Tracker:LocalProcesses:InstallMissing is 'sometimes'; use true or false.", problem);
    }

    private static IReadOnlyList<string> Packages(LocalServerBinaries found, Dictionary<string, string?> settings, bool aptGet)
    {
        var packages = LocalServerInstaller.PackagesToInstall(found, Configuration(settings), aptGet, out var problem);
        Assert.Null(problem);
        return packages;
    }

    private static IConfiguration Configuration(Dictionary<string, string?> settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
}
