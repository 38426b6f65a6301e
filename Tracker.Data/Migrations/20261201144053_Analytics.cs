using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Tracker.Data.Migrations
{
    /// <inheritdoc />
    public partial class Analytics : Migration
    {
        // The optional fields of a log. Adding nullable columns without a default changes only the catalog, not the
        // rows. lock_timeout: as for LogIds, failing the migration beats queueing every ingest COPY behind the ALTER.
        private const string AddLogFields = """
            SET LOCAL lock_timeout = '10s';
            ALTER TABLE logs ADD COLUMN status_code smallint, ADD COLUMN duration_ms double precision;
            """;

        // A latency sketch is a bigint[] of packed buckets (the bucket's key above LatencySketch.CountBits, its count
        // below) in any order, a bucket possibly repeated: concatenating merges, and compacting sums the repeats.
        // array_cat's copy per row makes the aggregate quadratic, which is fine for the few cells one batch merges.
        private static readonly string CreateSketchFunctions = $$"""
            CREATE FUNCTION {{LatencySketch.CompactFunction}}(packed bigint[]) RETURNS bigint[]
            LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
                SELECT coalesce(array_agg((bucket << {{LatencySketch.CountBits}}) | total ORDER BY bucket), '{}')
                FROM (SELECT element >> {{LatencySketch.CountBits}} AS bucket, sum(element & {{(1L << LatencySketch.CountBits) - 1}})::bigint AS total
                      FROM unnest(packed) AS element
                      GROUP BY 1) AS buckets
            $$;

            CREATE AGGREGATE {{LatencySketch.ConcatAggregate}}(bigint[]) (SFUNC = array_cat, STYPE = bigint[], INITCOND = '{}');
            """;

        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "usage_hourly_details",
                columns: table => new
                {
                    client_id = table.Column<Guid>(type: "uuid", nullable: false),
                    hour_start = table.Column<DateTimeOffset>(type: "timestamptz", nullable: false),
                    endpoint = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    method = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    status_class = table.Column<short>(type: "smallint", nullable: false),
                    api_key_id = table.Column<Guid>(type: "uuid", nullable: false),
                    request_count = table.Column<long>(type: "bigint", nullable: false),
                    latency = table.Column<long[]>(type: "bigint[]", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_usage_hourly_details", x => new { x.client_id, x.hour_start, x.endpoint, x.method, x.status_class, x.api_key_id });
                    table.CheckConstraint("ck_usage_hourly_details_hour_start_whole_hour", "hour_start = date_trunc('hour', hour_start, 'UTC')");
                    table.CheckConstraint("ck_usage_hourly_details_status_class", "status_class BETWEEN 0 AND 5");
                    table.ForeignKey(
                        name: "fk_usage_hourly_details_clients_client_id",
                        column: x => x.client_id,
                        principalTable: "clients",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "usage_hourly_endpoints",
                columns: table => new
                {
                    client_id = table.Column<Guid>(type: "uuid", nullable: false),
                    hour_start = table.Column<DateTimeOffset>(type: "timestamptz", nullable: false),
                    endpoint = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_usage_hourly_endpoints", x => new { x.client_id, x.hour_start, x.endpoint });
                    table.ForeignKey(
                        name: "fk_usage_hourly_endpoints_clients_client_id",
                        column: x => x.client_id,
                        principalTable: "clients",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_usage_hourly_details_hour_start",
                table: "usage_hourly_details",
                column: "hour_start");

            migrationBuilder.CreateIndex(
                name: "ix_usage_hourly_endpoints_hour_start",
                table: "usage_hourly_endpoints",
                column: "hour_start");

            migrationBuilder.Sql(AddLogFields);
            migrationBuilder.Sql(CreateSketchFunctions);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql($"""
                DROP AGGREGATE IF EXISTS {LatencySketch.ConcatAggregate}(bigint[]);
                DROP FUNCTION IF EXISTS {LatencySketch.CompactFunction}(bigint[]);
                ALTER TABLE logs DROP COLUMN IF EXISTS status_code, DROP COLUMN IF EXISTS duration_ms;
                """);

            migrationBuilder.DropTable(
                name: "usage_hourly_details");

            migrationBuilder.DropTable(
                name: "usage_hourly_endpoints");
        }
    }
}
