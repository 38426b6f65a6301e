using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;
using Tracker.ApiService.Ingest;
using Tracker.ApiService.Storage;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.Storage;

/// <summary>
/// Every connection of the API's pools (the shared one and the log writer's own) bounds lock waits and idle transactions, so an orphaned transaction cannot
/// hold rollup rows for hours and no request waits on a lock without end.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class SessionSettingsTests(ServersFixture servers) : ApiTest(servers)
{
    [Theory]
    [InlineData(null)]
    [InlineData(LogBatchCommitter.DataSourceKey)]
    public async Task Connections_from_the_APIs_data_sources_bound_lock_waits_and_idle_transactions(string? key)
    {
        var dataSource = key is null
            ? Factory.Services.GetRequiredService<NpgsqlDataSource>()
            : Factory.Services.GetRequiredKeyedService<NpgsqlDataSource>(key);
        await using var connection = await dataSource.OpenConnectionAsync();

        Assert.Equal("5s", await ShowAsync(connection, "lock_timeout"));
        Assert.Equal("1min", await ShowAsync(connection, "idle_in_transaction_session_timeout"));
    }

    [Fact]
    public void The_log_writer_has_a_few_connections_of_its_own_beside_the_shared_pool()
    {
        var writers = Factory.Services.GetRequiredService<IOptions<IngestOptions>>().Value.Writers;
        var own = Factory.Services.GetRequiredKeyedService<NpgsqlDataSource>(LogBatchCommitter.DataSourceKey);

        Assert.NotSame(Factory.Services.GetRequiredService<NpgsqlDataSource>(), own);
        Assert.Equal(writers + 2, new NpgsqlConnectionStringBuilder(own.ConnectionString).MaxPoolSize);
    }

    [Fact]
    public void A_value_set_in_the_connection_string_is_kept_and_the_rest_added()
    {
        var builder = new NpgsqlConnectionStringBuilder("Host=db;Options=-c lock_timeout=2s -c search_path=public");

        PostgresSessionSettings.Apply(builder);

        Assert.Equal("-c lock_timeout=2s -c search_path=public -c idle_in_transaction_session_timeout=60s", builder.Options);
    }

    [Fact]
    public void Without_options_both_bounds_are_set()
    {
        var builder = new NpgsqlConnectionStringBuilder("Host=db");

        PostgresSessionSettings.Apply(builder);

        Assert.Equal("-c lock_timeout=5s -c idle_in_transaction_session_timeout=60s", builder.Options);
    }

    private static async Task<string?> ShowAsync(NpgsqlConnection connection, string setting)
    {
        await using var command = new NpgsqlCommand($"SHOW {setting}", connection);
        return (string?)await command.ExecuteScalarAsync();
    }
}
