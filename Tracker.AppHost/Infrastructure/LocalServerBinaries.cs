namespace Tracker.AppHost.Infrastructure;

/// <summary>Finds the PostgreSQL and Redis server programs installed on this machine.</summary>
internal sealed record LocalServerBinaries(string? PostgresBinDirectory, string? RedisServer)
{
    public const string PostgresBinDirectorySetting = "Tracker:LocalProcesses:PostgresBinDirectory";
    public const string RedisServerSetting = "Tracker:LocalProcesses:RedisServer";

    public bool IsComplete => PostgresBinDirectory is not null && RedisServer is not null;

    /// <summary>
    /// PostgreSQL: <paramref name="postgresBinDirectory"/> (the AppHost's <see cref="PostgresBinDirectorySetting"/>), else the newest
    /// <c>/usr/lib/postgresql/N/bin</c> (Debian, Ubuntu), else the directory of <c>postgres</c> on the PATH.
    /// Redis: <paramref name="redisServer"/> (<see cref="RedisServerSetting"/>), else <c>redis-server</c> on the PATH.
    /// </summary>
    public static LocalServerBinaries Find(string? postgresBinDirectory, string? redisServer)
    {
        var postgres = postgresBinDirectory ?? FindDebianPostgres() ?? FindPostgresOnPath();
        var redis = redisServer ?? FindOnPath("redis-server");
        return new LocalServerBinaries(
            postgres is not null && File.Exists(Path.Combine(postgres, "initdb")) ? postgres : null,
            redis is not null && File.Exists(redis) ? redis : null);
    }

    private static string? FindDebianPostgres()
    {
        const string root = "/usr/lib/postgresql";
        if (!Directory.Exists(root))
        {
            return null;
        }

        return Directory.GetDirectories(root)
            .Select(directory => (Directory: directory, Version: int.TryParse(Path.GetFileName(directory), out var version) ? version : -1))
            .Where(candidate => candidate.Version > 0 && File.Exists(Path.Combine(candidate.Directory, "bin", "postgres")))
            .OrderByDescending(candidate => candidate.Version)
            .Select(candidate => Path.Combine(candidate.Directory, "bin"))
            .FirstOrDefault();
    }

    // A postgres on the PATH is often a link into the versioned directory: follow it to find initdb beside it.
    private static string? FindPostgresOnPath()
    {
        var postgres = FindOnPath("postgres");
        if (postgres is null)
        {
            return null;
        }

        var resolved = new FileInfo(postgres).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? postgres;
        return Path.GetDirectoryName(resolved);
    }

    /// <summary>The full path of <paramref name="program"/> on the PATH, or null.</summary>
    public static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, program))
            .FirstOrDefault(File.Exists);
}
