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
            migrationBuilder.Sql($"DROP VIEW {HourlyUsageMark.TotalsView};");

            migrationBuilder.DropTable(
                name: "usage_hourly_marks");
        }
    }
}
