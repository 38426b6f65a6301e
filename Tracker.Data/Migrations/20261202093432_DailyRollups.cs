using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Tracker.Data.Migrations
{
    /// <inheritdoc />
    public partial class DailyRollups : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "usage_daily_compaction",
                columns: table => new
                {
                    id = table.Column<short>(type: "smallint", nullable: false),
                    compacted_through = table.Column<DateOnly>(type: "date", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_usage_daily_compaction", x => x.id);
                    table.CheckConstraint("ck_usage_daily_compaction_single_row", "id = 1");
                });

            migrationBuilder.CreateTable(
                name: "usage_daily_details",
                columns: table => new
                {
                    client_id = table.Column<Guid>(type: "uuid", nullable: false),
                    day = table.Column<DateOnly>(type: "date", nullable: false),
                    endpoint = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    method = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    status_class = table.Column<short>(type: "smallint", nullable: false),
                    api_key_id = table.Column<Guid>(type: "uuid", nullable: false),
                    request_count = table.Column<long>(type: "bigint", nullable: false),
                    latency = table.Column<long[]>(type: "bigint[]", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_usage_daily_details", x => new { x.client_id, x.day, x.endpoint, x.method, x.status_class, x.api_key_id });
                    table.CheckConstraint("ck_usage_daily_details_status_class", "status_class BETWEEN 0 AND 5");
                    table.ForeignKey(
                        name: "fk_usage_daily_details_clients_client_id",
                        column: x => x.client_id,
                        principalTable: "clients",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "usage_daily_stale",
                columns: table => new
                {
                    client_id = table.Column<Guid>(type: "uuid", nullable: false),
                    day = table.Column<DateOnly>(type: "date", nullable: false),
                    version = table.Column<long>(type: "bigint", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_usage_daily_stale", x => new { x.client_id, x.day });
                    table.ForeignKey(
                        name: "fk_usage_daily_stale_clients_client_id",
                        column: x => x.client_id,
                        principalTable: "clients",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_usage_daily_details_day",
                table: "usage_daily_details",
                column: "day");

            migrationBuilder.CreateIndex(
                name: "ix_usage_daily_stale_day",
                table: "usage_daily_stale",
                column: "day");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "usage_daily_compaction");

            migrationBuilder.DropTable(
                name: "usage_daily_details");

            migrationBuilder.DropTable(
                name: "usage_daily_stale");
        }
    }
}
