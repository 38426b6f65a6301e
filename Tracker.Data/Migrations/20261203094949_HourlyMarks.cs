using System;
using Microsoft.EntityFrameworkCore.Migrations;
using Tracker.Data.Entities;

#nullable disable

namespace Tracker.Data.Migrations
{
    /// <inheritdoc />
    public partial class HourlyMarks : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // From here on an hour's total is its cells' sum, but logs stored before the detailed rollups existed are
            // in the totals only: each such hour gets a cell holding the difference (endpoint "{other}", method OTHER,
            // status "none", no latency and no key), so a fold keeps its total, and the breakdowns count those logs
            // too. The past days among them are marked stale, so the daily tier folds them again with that cell. First,
            // before the new table's foreign key locks clients until the migration commits: these scans may be long,
            // and the ingest of instances still running checks its own foreign keys against clients.
            migrationBuilder.Sql($$"""
                WITH missing AS (
                    SELECT hourly.client_id, hourly.hour_start, hourly.request_count - coalesce(cells.total, 0) AS request_count
                    FROM usage_hourly AS hourly
                    LEFT JOIN (SELECT client_id, hour_start, sum(request_count) AS total FROM usage_hourly_details GROUP BY 1, 2) AS cells
                        USING (client_id, hour_start)
                    WHERE hourly.request_count > coalesce(cells.total, 0)),
                added AS (
                    INSERT INTO usage_hourly_details (client_id, hour_start, endpoint, method, status_class, api_key_id, request_count, latency)
                    SELECT client_id, hour_start, '{{HourlyUsageDetail.OtherEndpoint}}', 'OTHER', 0, '00000000-0000-0000-0000-000000000000', request_count, '{}'
                    FROM missing
                    ON CONFLICT (client_id, hour_start, endpoint, method, status_class, api_key_id) DO UPDATE SET
                        request_count = usage_hourly_details.request_count + excluded.request_count)
                INSERT INTO usage_daily_stale (client_id, day, version)
                SELECT DISTINCT client_id, (hour_start AT TIME ZONE 'UTC')::date, 1 FROM missing
                WHERE hour_start < date_trunc('day', now(), 'UTC')
                ON CONFLICT (client_id, day) DO UPDATE SET version = usage_daily_stale.version + 1;
                """);

            migrationBuilder.CreateTable(
                name: "usage_hourly_marks",
                columns: table => new
                {
                    client_id = table.Column<Guid>(type: "uuid", nullable: false),
                    hour_start = table.Column<DateTimeOffset>(type: "timestamptz", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_usage_hourly_marks", x => new { x.client_id, x.hour_start });
                    table.CheckConstraint("ck_usage_hourly_marks_hour_start_whole_hour", "hour_start = date_trunc('hour', hour_start, 'UTC')");
                    table.ForeignKey(
                        name: "fk_usage_hourly_marks_clients_client_id",
                        column: x => x.client_id,
                        principalTable: "clients",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            // Every hour's exact total, in any one snapshot: ingest commits an hour's cells together with its mark,
            // and the fold writes an hour's total together with removing its mark (HourlyUsageMark).
            migrationBuilder.Sql($"""
                CREATE VIEW {HourlyUsageMark.TotalsView} AS
                SELECT hourly.client_id, hourly.hour_start, hourly.request_count
                FROM usage_hourly AS hourly
                WHERE NOT EXISTS (SELECT FROM usage_hourly_marks AS mark
                    WHERE mark.client_id = hourly.client_id AND mark.hour_start = hourly.hour_start)
                UNION ALL
                SELECT detail.client_id, detail.hour_start, sum(detail.request_count)::bigint
                FROM usage_hourly_marks AS mark
                JOIN usage_hourly_details AS detail ON detail.client_id = mark.client_id AND detail.hour_start = mark.hour_start
                GROUP BY detail.client_id, detail.hour_start;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            // The marked hours' totals first: the version before reads usage_hourly alone.
            migrationBuilder.Sql("""
                INSERT INTO usage_hourly (client_id, hour_start, request_count)
                SELECT detail.client_id, detail.hour_start, sum(detail.request_count)::bigint
                FROM usage_hourly_marks AS mark
                JOIN usage_hourly_details AS detail ON detail.client_id = mark.client_id AND detail.hour_start = mark.hour_start
                GROUP BY 1, 2
                ON CONFLICT (client_id, hour_start) DO UPDATE SET request_count = excluded.request_count;
                """);
            migrationBuilder.Sql($"DROP VIEW {HourlyUsageMark.TotalsView};");

            migrationBuilder.DropTable(
                name: "usage_hourly_marks");
        }
    }
}
