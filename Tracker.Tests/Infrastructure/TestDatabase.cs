using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using Tracker.Data;

namespace Tracker.Tests.Infrastructure;

internal static class TestDatabase
{
    // The suite makes some eighty migrated databases: each server migrates one template and every database is a copy
    // of it (CREATE DATABASE … TEMPLATE, a tenth of a second), which took half a minute off the test servers'
    // collection. The migrations create the log partitions around the current UTC day, so a template serves its own
    // day only.
    private static readonly ConditionalWeakTable<PostgresTestServer, Template> s_templates = [];

    /// <summary>A new database on <paramref name="server"/> with every migration applied, as the migration worker would.</summary>
    public static async Task<string> CreateMigratedAsync(PostgresTestServer server)
    {
        var template = await s_templates.GetValue(server, _ => new Template()).GetAsync(server);
        return server.ConnectionStringFor(await server.CreateDatabaseAsync("tracker", template));
    }

    /// <summary>Drops the database <paramref name="connectionString"/> names, and the pooled connections to it.</summary>
    public static Task DropAsync(PostgresTestServer server, string connectionString) =>
        server.DropDatabaseAsync(new NpgsqlConnectionStringBuilder(connectionString).Database!);

    public static TrackerDbContext CreateContext(string connectionString)
    {
        var options = new DbContextOptionsBuilder<TrackerDbContext>().UseNpgsql(connectionString);
        TrackerDbContext.ConfigureConventions(options);
        return new TrackerDbContext(options.Options);
    }

    /// <summary>One server's migrated template, made again when the UTC day changes.</summary>
    private sealed class Template
    {
        private readonly SemaphoreSlim _gate = new(1, 1);
        private (string Name, DateOnly Day)? _current;

        public async Task<string> GetAsync(PostgresTestServer server)
        {
            await _gate.WaitAsync();
            try
            {
                while (_current is not { } current || current.Day != DateOnly.FromDateTime(DateTime.UtcNow))
                {
                    var today = DateOnly.FromDateTime(DateTime.UtcNow);
                    var name = await server.CreateDatabaseAsync("template");
                    // Unpooled: a copy cannot be made while any session is connected to its template.
                    var connectionString = new NpgsqlConnectionStringBuilder(server.ConnectionStringFor(name)) { Pooling = false }.ConnectionString;
                    await using (var dbContext = CreateContext(connectionString))
                    {
                        await dbContext.Database.MigrateAsync();
                    }

                    // If the day changed while it migrated, its partitions may be around either day: make another.
                    _current = DateOnly.FromDateTime(DateTime.UtcNow) == today ? (name, today) : null;
                }

                return _current.Value.Name;
            }
            finally
            {
                _gate.Release();
            }
        }
    }
}
