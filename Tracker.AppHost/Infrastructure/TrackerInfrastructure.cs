using Microsoft.Extensions.Configuration;

namespace Tracker.AppHost.Infrastructure;

/// <summary>
/// PostgreSQL (database <c>trackerdb</c>) and Redis (<c>cache</c>) for the rest of the AppHost, from wherever
/// <see cref="InfrastructureMode"/> says. The projects see the same two connection strings in every mode.
/// </summary>
internal sealed record TrackerInfrastructure(
    InfrastructureMode Mode,
    IResourceBuilder<IResourceWithConnectionString> Database,
    IResourceBuilder<IResourceWithConnectionString> Cache,
    IReadOnlyList<IResourceBuilder<IResource>> Servers)
{
    public const string ModeSetting = "Tracker:Infrastructure";

    /// <summary>
    /// Adds the servers, or explains what is missing. Publishing (azd, manifests) always describes containers:
    /// that is what Azure Container Apps runs.
    /// </summary>
    public static TrackerInfrastructure? TryAdd(IDistributedApplicationBuilder builder, out string? problem)
    {
        problem = null;
        var configuration = builder.Configuration;
        var databasePassword = builder.AddParameter("postgres-password", PasswordDefault(), secret: true, persist: true);
        var cachePassword = builder.AddParameter("cache-password", PasswordDefault(), secret: true, persist: true);

        var mode = builder.ExecutionContext.IsPublishMode
            ? InfrastructureMode.Containers
            : ChooseMode(configuration, ContainerEngineProbe.IsAnswering, out problem);
        switch (mode)
        {
            case InfrastructureMode.Containers:
                return AddContainers(builder, databasePassword, cachePassword);
            case InfrastructureMode.External:
                return AddExternal(builder, out problem);
            case InfrastructureMode.LocalProcesses:
                var binaries = FindLocalServers(builder, out problem);
                if (binaries is null)
                {
                    return null;
                }

                return LocalProcesses.Add(builder, binaries, DataDirectory(configuration), databasePassword, cachePassword);
            default:
                return null;
        }
    }

    /// <summary>The machine's PostgreSQL and Redis programs, installed first where they are missing and may be; else null and what to do.</summary>
    private static LocalServerBinaries? FindLocalServers(IDistributedApplicationBuilder builder, out string? problem)
    {
        var configuration = builder.Configuration;
        var binaries = Find();
        var packages = LocalServerInstaller.PackagesToInstall(
            binaries, configuration, aptGetAvailable: LocalServerBinaries.FindOnPath("apt-get") is not null, out problem);
        if (problem is not null)
        {
            return null;
        }

        if (packages.Count > 0)
        {
            if (!LocalServerInstaller.TryInstall(LocalProcesses.ScriptsDirectory(builder), packages, out problem))
            {
                return null;
            }

            binaries = Find();
        }

        if (!binaries.IsComplete)
        {
            problem = DescribeMissing(binaries, containerEngineChecked: configuration[ModeSetting] is null);
            return null;
        }

        return binaries;

        LocalServerBinaries Find() => LocalServerBinaries.Find(
            configuration[LocalServerBinaries.PostgresBinDirectorySetting], configuration[LocalServerBinaries.RedisServerSetting]);
    }

    private static GenerateParameterDefault PasswordDefault() => new() { MinLength = 32, Special = false };

    /// <summary>
    /// The configured mode; else External when both connection strings are set; else Containers when
    /// <paramref name="containerEngineAnswers"/> says the engine answers; else LocalProcesses.
    /// </summary>
    internal static InfrastructureMode? ChooseMode(
        IConfiguration configuration, Func<string?, bool> containerEngineAnswers, out string? problem)
    {
        problem = null;
        var configured = configuration[ModeSetting];
        if (!string.IsNullOrWhiteSpace(configured))
        {
            if (Enum.TryParse<InfrastructureMode>(configured, ignoreCase: true, out var mode) && Enum.IsDefined(mode))
            {
                return mode;
            }

            problem = $"{ModeSetting} is '{configured}'; use Containers, LocalProcesses or External.";
            return null;
        }

        if (HasExternalConnectionStrings(configuration))
        {
            return InfrastructureMode.External;
        }

        return containerEngineAnswers(configuration["ASPIRE_CONTAINER_RUNTIME"])
            ? InfrastructureMode.Containers
            : InfrastructureMode.LocalProcesses;
    }

    private static bool HasExternalConnectionStrings(IConfiguration configuration) =>
        !string.IsNullOrWhiteSpace(configuration.GetConnectionString(ResourceNames.Database))
        && !string.IsNullOrWhiteSpace(configuration.GetConnectionString(ResourceNames.Cache));

    private static string DataDirectory(ConfigurationManager configuration)
    {
        if (configuration["Tracker:DataDirectory"] is { Length: > 0 } configured)
        {
            return Path.GetFullPath(configured);
        }

        // As root, PostgreSQL runs as the 'postgres' user, who cannot enter /root: keep the data where
        // system services keep theirs. Otherwise the user's own data directory.
        return Environment.UserName == "root"
            ? "/var/lib/tracker"
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "tracker");
    }

    private static TrackerInfrastructure AddContainers(
        IDistributedApplicationBuilder builder, IResourceBuilder<ParameterResource> databasePassword, IResourceBuilder<ParameterResource> cachePassword)
    {
        var postgres = builder.AddPostgres(ResourceNames.PostgresServer, password: databasePassword).WithDataVolume();
        var database = postgres.AddDatabase(ResourceNames.Database);
        var cache = builder.AddRedis(ResourceNames.Cache, password: cachePassword).WithDataVolume();
        return new TrackerInfrastructure(InfrastructureMode.Containers, database, cache, [database, cache]);
    }

    private static TrackerInfrastructure? AddExternal(IDistributedApplicationBuilder builder, out string? problem)
    {
        if (!HasExternalConnectionStrings(builder.Configuration))
        {
            problem = $"{ModeSetting} is External, so set both ConnectionStrings:{ResourceNames.Database} and "
                + $"ConnectionStrings:{ResourceNames.Cache} (user secrets, environment or appsettings).";
            return null;
        }

        problem = null;
        var database = builder.AddConnectionString(ResourceNames.Database);
        var cache = builder.AddConnectionString(ResourceNames.Cache);
        return new TrackerInfrastructure(InfrastructureMode.External, database, cache, []);
    }

    private static string DescribeMissing(LocalServerBinaries binaries, bool containerEngineChecked)
    {
        var missing = new List<string>();
        if (binaries.PostgresBinDirectory is null)
        {
            missing.Add("PostgreSQL server programs (postgres, initdb)");
        }

        if (binaries.RedisServer is null)
        {
            missing.Add("redis-server");
        }

        var engine = containerEngineChecked ? "No container engine answered (docker or podman), and " : string.Empty;
        return $"""
            Tracker needs PostgreSQL and Redis. {engine}this machine lacks {string.Join(" and ", missing)}.
            Do one of these, then run again:
              - Debian/Ubuntu:  sudo apt-get install -y postgresql redis-server
              - Fedora/RHEL:    sudo dnf install -y postgresql-server redis
              - macOS:          brew install postgresql redis
              - start Docker or Podman (Tracker then uses containers), or
              - point Tracker at running servers: set ConnectionStrings:trackerdb and ConnectionStrings:cache.
            Programs in other places: set {LocalServerBinaries.PostgresBinDirectorySetting} and {LocalServerBinaries.RedisServerSetting}.
            """;
    }
}
