using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Tracker.ApiService.Ingest;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;

namespace Tracker.Tests.Usage;

/// <summary>Retention by tier: hourly and daily rollups outlive the raw logs, and go once past <c>Retention:RollupDays</c>.</summary>
[Collection(nameof(RealServers))]
public sealed class RollupRetentionTests(ServersFixture servers)
{
    [Fact]
    public async Task Maintenance_deletes_rollup_hours_and_days_past_rollup_retention_and_keeps_younger_ones_past_log_retention()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["Retention:Days"] = "30",
            ["Retention:RollupDays"] = "60",
            // Past marks are left for retention, not folded away by a run between the inserts and maintenance.
            ["Usage:HourlyTotalsFoldSeconds"] = "3600",
        });
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        var cs = factory.DatabaseConnectionString;
        var today = DateTime.UtcNow.Date;
        foreach (var daysAgo in new[] { 61, 59, 45 })
        {
            var hour = $"'{today.AddDays(-daysAgo):yyyy-MM-dd} 05:00+00'";
            await ExecuteAsync(cs, $"""
                INSERT INTO usage_hourly (client_id, hour_start, request_count) VALUES ('{client.Id}', {hour}, 3);
                INSERT INTO usage_hourly_details (client_id, hour_start, endpoint, method, status_class, api_key_id, request_count, latency)
                VALUES ('{client.Id}', {hour}, '/x', 'GET', 2, '{Guid.NewGuid()}', 3, ARRAY[]::bigint[]);
                INSERT INTO usage_hourly_endpoints (client_id, hour_start, endpoint) VALUES ('{client.Id}', {hour}, '/x');
                INSERT INTO usage_hourly_marks (client_id, hour_start) VALUES ('{client.Id}', {hour});
                INSERT INTO usage_daily_details (client_id, day, endpoint, method, status_class, api_key_id, request_count, latency)
                VALUES ('{client.Id}', '{today.AddDays(-daysAgo):yyyy-MM-dd}', '/x', 'GET', 2, '{Guid.NewGuid()}', 3, ARRAY[]::bigint[]);
                INSERT INTO usage_daily_stale (client_id, day, version) VALUES ('{client.Id}', '{today.AddDays(-daysAgo):yyyy-MM-dd}', 1);
                """);
        }

        await factory.Services.GetRequiredService<PartitionMaintenance>().RunOnceAsync(CancellationToken.None);

        foreach (var table in new[] { "usage_hourly", "usage_hourly_details", "usage_hourly_endpoints", "usage_hourly_marks" })
        {
            Assert.Equal(2, await ScalarAsync(cs, $"SELECT count(*) FROM {table}"));
            Assert.Equal(0, await ScalarAsync(cs, $"SELECT count(*) FROM {table} WHERE hour_start < '{today.AddDays(-60):yyyy-MM-dd}'"));
        }

        foreach (var table in new[] { "usage_daily_details", "usage_daily_stale" })
        {
            Assert.Equal(2, await ScalarAsync(cs, $"SELECT count(*) FROM {table}"));
            Assert.Equal(0, await ScalarAsync(cs, $"SELECT count(*) FROM {table} WHERE day < '{today.AddDays(-60):yyyy-MM-dd}'"));
        }

        // The logs' own partitions still go at 30 days.
        Assert.Equal(0, await ScalarAsync(cs, $"SELECT count(*) FROM pg_class WHERE relname = 'logs_p{today.AddDays(-31):yyyyMMdd}'"));
    }

    [Fact]
    public async Task Rollups_kept_shorter_than_the_logs_stop_the_api_at_start()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["Retention:Days"] = "90",
            ["Retention:RollupDays"] = "30",
        });
        var exception = Assert.ThrowsAny<Exception>(() => factory.CreateClient());
        var validation = Assert.IsType<OptionsValidationException>(exception.GetBaseException());
        Assert.Contains("Retention:RollupDays must be at least Retention:Days", validation.Message, StringComparison.Ordinal);
    }
}
