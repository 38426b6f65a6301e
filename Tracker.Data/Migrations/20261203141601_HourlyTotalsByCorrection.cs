using Microsoft.EntityFrameworkCore.Migrations;
using Tracker.Data.Entities;

#nullable disable

namespace Tracker.Data.Migrations
{
    /// <inheritdoc />
    public partial class HourlyTotalsByCorrection : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // Every folded total, plus for each marked hour what its cells add to its total (all of them if it has
            // none yet): summed by hour, day or client, every hour counts its cells' sum if marked, its total if not.
            // The view before kept one row per hour by checking every total of a window against the marks, an
            // anti-join that cost an uncached top 257 ms of PostgreSQL with ten million logs of history; here each
            // mark costs two lookups by client and hour, both inside the LATERAL subquery so that no plan can turn
            // them into a scan of every total (a join would let it). Readers must sum: an hour may have two rows.
            migrationBuilder.Sql($"""
                CREATE OR REPLACE VIEW {HourlyUsageMark.TotalsView} AS
                SELECT hourly.client_id, hourly.hour_start, hourly.request_count
                FROM usage_hourly AS hourly
                UNION ALL
                SELECT mark.client_id, mark.hour_start, cells.added
                FROM usage_hourly_marks AS mark
                CROSS JOIN LATERAL (
                    SELECT sum(detail.request_count)::bigint - coalesce((
                        SELECT folded.request_count FROM usage_hourly AS folded
                        WHERE folded.client_id = mark.client_id AND folded.hour_start = mark.hour_start), 0) AS added
                    FROM usage_hourly_details AS detail
                    WHERE detail.client_id = mark.client_id AND detail.hour_start = mark.hour_start
                    HAVING count(*) > 0) AS cells;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql($"""
                CREATE OR REPLACE VIEW {HourlyUsageMark.TotalsView} AS
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
    }
}
