using Microsoft.EntityFrameworkCore;
using Tracker.Data;

namespace Tracker.Tests.Infrastructure;

internal static class TestDatabase
{
    /// <summary>A new database on <paramref name="server"/> with every migration applied, as the migration worker would.</summary>
    public static async Task<string> CreateMigratedAsync(PostgresTestServer server)
    {
        var connectionString = server.ConnectionStringFor(await server.CreateDatabaseAsync("tracker"));
        await using var dbContext = CreateContext(connectionString);
        await dbContext.Database.MigrateAsync();
        return connectionString;
    }

    /// <summary>Drops the database <paramref name="connectionString"/> names, and the pooled connections to it.</summary>
    public static Task DropAsync(PostgresTestServer server, string connectionString) =>
        server.DropDatabaseAsync(new Npgsql.NpgsqlConnectionStringBuilder(connectionString).Database!);

    public static TrackerDbContext CreateContext(string connectionString)
    {
        var options = new DbContextOptionsBuilder<TrackerDbContext>().UseNpgsql(connectionString);
        TrackerDbContext.ConfigureConventions(options);
        return new TrackerDbContext(options.Options);
    }
}
