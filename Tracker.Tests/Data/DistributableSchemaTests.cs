using Npgsql;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.Data;

/// <summary>
/// The migrated schema meets Citus's rules for distributing the tables that grow by <c>client_id</c> (docs/scaling.md):
/// a distributed table's primary key and unique indexes include the distribution column, and foreign keys run
/// from distributed tables to reference tables (or between distributed tables on the distribution column), never
/// from a reference table to a distributed one. Citus itself is not packaged for these machines; these are the
/// rules its <c>create_distributed_table</c> and <c>create_reference_table</c> enforce.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class DistributableSchemaTests(ServersFixture servers) : IAsyncLifetime
{
    private const string DistributionColumn = "client_id";

    /// <summary>
    /// Small tables copied to every node: accounts and their keys (read on every request, a few rows per client),
    /// EF's migration history, the daily compaction's one-row watermark (read by every breakdown), and
    /// <c>ingest_batches</c>, which nothing writes any more and a later release drops.
    /// Every other table must be distributable by <see cref="DistributionColumn"/>: a new table is one or the other.
    /// </summary>
    private static readonly string[] ReferenceTables = ["clients", "api_keys", "__EFMigrationsHistory", "usage_daily_compaction", "ingest_batches"];

    private string _connectionString = null!;

    public async Task InitializeAsync() => _connectionString = await TestDatabase.CreateMigratedAsync(servers.Postgres);

    public Task DisposeAsync() => TestDatabase.DropAsync(servers.Postgres, _connectionString);

    [Fact]
    public async Task Every_table_but_the_reference_tables_has_the_distribution_column()
    {
        var tables = await ListAsync<(string Table, bool HasColumn)>($"""
            SELECT c.relname, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = '{DistributionColumn}' AND NOT a.attisdropped)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
            """, reader => (reader.GetString(0), reader.GetBoolean(1)));

        Assert.Contains(tables, table => table.Table == "logs");
        Assert.Contains(tables, table => table.Table == "usage_hourly");
        Assert.All(tables.Where(table => !ReferenceTables.Contains(table.Table)), table =>
            Assert.True(table.HasColumn, $"{table.Table} has no {DistributionColumn}: distribute it by one or list it as a reference table"));
    }

    [Fact]
    public async Task Every_primary_key_and_unique_index_of_a_distributed_table_includes_the_distribution_column()
    {
        var indexes = await ListAsync<(string Table, string Index, bool HasColumn)>($"""
            SELECT t.relname, i.relname,
                   EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attname = '{DistributionColumn}' AND a.attnum = ANY (x.indkey))
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = 'public' AND x.indisunique AND NOT t.relispartition
            """, reader => (reader.GetString(0), reader.GetString(1), reader.GetBoolean(2)));

        var distributed = indexes.Where(index => !ReferenceTables.Contains(index.Table)).ToList();
        Assert.Contains(distributed, index => index.Table == "logs");
        Assert.Contains(distributed, index => index.Table == "usage_hourly");
        Assert.All(distributed, index =>
            Assert.True(index.HasColumn, $"{index.Index} on {index.Table} does not include {DistributionColumn}: Citus refuses it"));
    }

    [Fact]
    public async Task Foreign_keys_run_from_distributed_to_reference_tables_or_between_distributed_tables_on_the_distribution_column()
    {
        var foreignKeys = await ListAsync<(string Name, string From, string To, bool OnDistributionColumn)>($"""
            SELECT k.conname, f.relname, r.relname,
                   EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = f.oid AND a.attname = '{DistributionColumn}' AND a.attnum = ANY (k.conkey))
            FROM pg_constraint k
            JOIN pg_class f ON f.oid = k.conrelid
            JOIN pg_class r ON r.oid = k.confrelid
            JOIN pg_namespace n ON n.oid = f.relnamespace
            WHERE n.nspname = 'public' AND k.contype = 'f' AND NOT f.relispartition
            """, reader => (reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetBoolean(3)));

        Assert.NotEmpty(foreignKeys);
        Assert.All(foreignKeys, key =>
        {
            var fromReference = ReferenceTables.Contains(key.From);
            var toReference = ReferenceTables.Contains(key.To);
            Assert.False(fromReference && !toReference, $"{key.Name}: reference table {key.From} refers to distributed {key.To}");
            Assert.True(toReference || key.OnDistributionColumn,
                $"{key.Name}: distributed {key.From} refers to distributed {key.To} other than by {DistributionColumn}");
        });
    }

    private async Task<List<T>> ListAsync<T>(string sql, Func<NpgsqlDataReader, T> read)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<T>();
        while (await reader.ReadAsync())
        {
            rows.Add(read(reader));
        }

        return rows;
    }
}
