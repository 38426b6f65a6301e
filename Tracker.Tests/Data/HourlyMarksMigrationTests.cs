using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using Tracker.ApiService.Usage;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;

namespace Tracker.Tests.Data;

/// <summary>
/// The migration that makes an hour's total the sum of its detailed cells keeps every total of a database that has
/// hours from before the detailed rollups existed (counted in <c>usage_hourly</c> only), and keeps them through a fold.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class HourlyMarksMigrationTests(ServersFixture servers)
{
    private const string Client = "00000000-0000-0000-0000-0000000000c1";
    private const string Key = "00000000-0000-0000-0000-0000000000a1";

    [Fact]
    public async Task Hours_counted_before_the_detailed_rollups_keep_their_totals_and_reach_the_breakdowns()
    {
        var cs = servers.Postgres.ConnectionStringFor(await servers.Postgres.CreateDatabaseAsync("tracker"));
        try
        {
            await using (var db = TestDatabase.CreateContext(cs))
            {
                await db.GetService<IMigrator>().MigrateAsync("20261202093432_DailyRollups");
            }

            // Three hours two days ago: one from before the cells (5 logs, no cells), one partly (7 logs, 3 in cells),
            // one whole (2 logs, 2 in cells); the day folded into the daily tier before the upgrade.
            // In hours, not days: a day of interval is a calendar day of the session's time zone, which may have 23 or 25 hours.
            var day = "(date_trunc('day', now(), 'UTC') - interval '48 hours')";
            await ExecuteAsync(cs, $$"""
                INSERT INTO clients (id, name, email, normalized_email, password_hash, created_at, updated_at)
                VALUES ('{{Client}}', 'c', 'c@example.com', 'c@example.com', 'x', now(), now());
                INSERT INTO usage_hourly VALUES ('{{Client}}', {{day}}, 5), ('{{Client}}', {{day}} + interval '1 hour', 7), ('{{Client}}', {{day}} + interval '2 hours', 2);
                INSERT INTO usage_hourly_details VALUES
                    ('{{Client}}', {{day}} + interval '1 hour', '/v1/orders', 'GET', 2, '{{Key}}', 3, '{}'),
                    ('{{Client}}', {{day}} + interval '2 hours', '/v1/orders', 'GET', 2, '{{Key}}', 2, '{}');
                INSERT INTO usage_daily_details VALUES ('{{Client}}', ({{day}} AT TIME ZONE 'UTC')::date, '/v1/orders', 'GET', 2, '{{Key}}', 5, '{}');
                INSERT INTO usage_daily_compaction VALUES (1, ({{day}} AT TIME ZONE 'UTC')::date);
                """);

            await using (var db = TestDatabase.CreateContext(cs))
            {
                await db.Database.MigrateAsync();
            }

            const string Totals = "SELECT string_agg(total::text, ',' ORDER BY hour_start) FROM (SELECT hour_start, sum(request_count) AS total FROM {0} GROUP BY 1) AS hours";
            Assert.Equal("5,7,2", await TextAsync(cs, string.Format(Totals, "usage_hourly_totals")));
            Assert.Equal(14, await ScalarAsync(cs, "SELECT sum(request_count) FROM usage_hourly_details"));
            Assert.Equal(9, await ScalarAsync(cs, $"SELECT sum(request_count) FROM usage_hourly_details WHERE endpoint = '{{other}}' AND api_key_id = '{Guid.Empty}'"));
            Assert.Equal(1, await ScalarAsync(cs, $"SELECT count(*) FROM usage_daily_stale WHERE client_id = '{Client}'"));

            // A fold of those hours (as after a late log for each) writes the same totals.
            await ExecuteAsync(cs, "INSERT INTO usage_hourly_marks SELECT client_id, hour_start FROM usage_hourly");
            await using (var dataSource = NpgsqlDataSource.Create(cs))
            {
                var fold = new HourlyTotalsFold(dataSource, Options.Create(new UsageOptions()), TimeProvider.System, NullLogger<HourlyTotalsFold>.Instance);
                Assert.Equal(3, await fold.RunOnceAsync(CancellationToken.None));
            }

            Assert.Equal("5,7,2", await TextAsync(cs, string.Format(Totals, "usage_hourly")));
        }
        finally
        {
            await TestDatabase.DropAsync(servers.Postgres, cs);
        }
    }
}
