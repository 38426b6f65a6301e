using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Tracker.Data.Migrations
{
    /// <inheritdoc />
    public partial class LogIds : Migration
    {
        // A client may name each log (a UUID, its own request id) so that a retry is not stored or counted twice.
        // A unique index on a partitioned table must include the partition key, so uniqueness is of (client, id,
        // time): a retry carries the same log with the same timestamp, so it lands in the same partition and meets
        // the first copy there. The index is partial: logs without an id (the common case) cost no entry in it.
        // Adding a nullable column without a default changes only the catalog, not the rows.
        // lock_timeout: behind a long report the ALTER would queue every ingest COPY behind itself; failing the
        // migration (the worker exits non-zero, the deployment retries) is better than stalling ingest.
        // Known limit: on a large existing table the unique index is built under a lock that holds up ingest for
        // the length of the build; a deployment with much data should build it per partition CONCURRENTLY first.
        private static readonly string AddLogIds = $"""
            SET LOCAL lock_timeout = '10s';
            ALTER TABLE logs ADD COLUMN log_id varchar({LogTable.LogIdMaxLength});
            CREATE UNIQUE INDEX {LogTable.LogIdIndex} ON logs (client_id, log_id, occurred_at) WHERE log_id IS NOT NULL;
            """;

        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql(AddLogIds);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql($"DROP INDEX IF EXISTS {LogTable.LogIdIndex}; ALTER TABLE logs DROP COLUMN IF EXISTS log_id;");
        }
    }
}
