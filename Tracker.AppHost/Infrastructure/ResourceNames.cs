namespace Tracker.AppHost.Infrastructure;

/// <summary>The resource names the projects and azd rely on; the connection strings carry the same names.</summary>
internal static class ResourceNames
{
    public const string PostgresServer = "postgres";
    public const string Database = "trackerdb";
    public const string Cache = "cache";
    public const string Migrations = "migrations";
    public const string Api = "api";
    public const string Web = "web";
}
