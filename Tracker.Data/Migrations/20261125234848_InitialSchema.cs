using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Tracker.Data.Migrations
{
    /// <inheritdoc />
    public partial class InitialSchema : Migration
    {
        // The logs table is written here as SQL because EF Core cannot express declarative partitioning.
        // Partitioned by day on the event time so that retention drops whole partitions instead of deleting rows.
        // No foreign key to clients: a per-row check would slow the COPY on the ingest path, and every row is
        // written by an API-key-authenticated request whose client exists (clients are never deleted).
        private const string CreateLogsTable = """
            CREATE TABLE logs (
                client_id   uuid          NOT NULL,
                api_key_id  uuid          NOT NULL,
                occurred_at timestamptz   NOT NULL,
                received_at timestamptz   NOT NULL DEFAULT now(),
                ip_address  inet          NOT NULL,
                method      varchar(16)   NOT NULL,
                endpoint    varchar(2048) NOT NULL
            ) PARTITION BY RANGE (occurred_at);

            CREATE INDEX ix_logs_client_id_occurred_at ON logs (client_id, occurred_at);
            """;

        // Idempotent and safe to call from several instances at once (the advisory lock serialises them).
        // Partition bounds are UTC midnights whatever the session's time zone.
        private const string CreateEnsurePartitionsFunction = """
            CREATE FUNCTION ensure_log_partitions(first_day date, last_day date) RETURNS integer
            LANGUAGE plpgsql AS $$
            DECLARE
                day date;
                partition_name text;
                created integer := 0;
            BEGIN
                PERFORM pg_advisory_xact_lock(hashtext('ensure_log_partitions'));
                FOR day IN SELECT generate_series(first_day, last_day, interval '1 day')::date LOOP
                    partition_name := 'logs_p' || to_char(day, 'YYYYMMDD');
                    IF to_regclass(partition_name) IS NULL THEN
                        EXECUTE format(
                            'CREATE TABLE %I PARTITION OF logs FOR VALUES FROM (%L) TO (%L)',
                            partition_name,
                            day::timestamp AT TIME ZONE 'UTC',
                            (day + 1)::timestamp AT TIME ZONE 'UTC');
                        created := created + 1;
                    END IF;
                END LOOP;
                RETURN created;
            END;
            $$;
            """;

        // The default retention window (90 days) and a week ahead, so the first ingest finds its partitions;
        // the API's maintenance keeps the window moving from then on.
        private const string CreateInitialPartitions = """
            SELECT ensure_log_partitions(
                (now() AT TIME ZONE 'UTC')::date - 90,
                (now() AT TIME ZONE 'UTC')::date + 7);
            """;

        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "clients",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    name = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    email = table.Column<string>(type: "character varying(254)", maxLength: 254, nullable: false),
                    normalized_email = table.Column<string>(type: "character varying(254)", maxLength: 254, nullable: false),
                    password_hash = table.Column<string>(type: "text", nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamptz", nullable: false),
                    updated_at = table.Column<DateTimeOffset>(type: "timestamptz", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_clients", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "api_keys",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    client_id = table.Column<Guid>(type: "uuid", nullable: false),
                    name = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    prefix = table.Column<string>(type: "character(8)", fixedLength: true, maxLength: 8, nullable: false),
                    key_hash = table.Column<byte[]>(type: "bytea", nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamptz", nullable: false),
                    last_used_at = table.Column<DateTimeOffset>(type: "timestamptz", nullable: true),
                    revoked_at = table.Column<DateTimeOffset>(type: "timestamptz", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_api_keys", x => x.id);
                    table.CheckConstraint("ck_api_keys_key_hash_length", "octet_length(key_hash) = 32");
                    table.ForeignKey(
                        name: "fk_api_keys_clients_client_id",
                        column: x => x.client_id,
                        principalTable: "clients",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "usage_hourly",
                columns: table => new
                {
                    client_id = table.Column<Guid>(type: "uuid", nullable: false),
                    hour_start = table.Column<DateTimeOffset>(type: "timestamptz", nullable: false),
                    request_count = table.Column<long>(type: "bigint", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_usage_hourly", x => new { x.client_id, x.hour_start });
                    table.CheckConstraint("ck_usage_hourly_hour_start_whole_hour", "hour_start = date_trunc('hour', hour_start, 'UTC')");
                    table.ForeignKey(
                        name: "fk_usage_hourly_clients_client_id",
                        column: x => x.client_id,
                        principalTable: "clients",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_api_keys_client_id",
                table: "api_keys",
                column: "client_id");

            migrationBuilder.CreateIndex(
                name: "ux_api_keys_key_hash",
                table: "api_keys",
                column: "key_hash",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ux_clients_normalized_email",
                table: "clients",
                column: "normalized_email",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_usage_hourly_hour_start",
                table: "usage_hourly",
                column: "hour_start")
                .Annotation("Npgsql:IndexInclude", new[] { "client_id", "request_count" });

            migrationBuilder.Sql(CreateLogsTable);
            migrationBuilder.Sql(CreateEnsurePartitionsFunction);
            migrationBuilder.Sql(CreateInitialPartitions);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("DROP FUNCTION IF EXISTS ensure_log_partitions(date, date);");
            migrationBuilder.Sql("DROP TABLE IF EXISTS logs;");

            migrationBuilder.DropTable(
                name: "api_keys");

            migrationBuilder.DropTable(
                name: "usage_hourly");

            migrationBuilder.DropTable(
                name: "clients");
        }
    }
}
