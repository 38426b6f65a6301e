using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Tracker.Data.Migrations
{
    /// <inheritdoc />
    public partial class IngestBatches : Migration
    {
        // One row per committed ingest batch, written in the batch's own transaction. When the connection dies
        // while COMMIT is in flight, the writer cannot know whether the batch was committed; this row tells it,
        // so it neither loses the batch nor writes it twice. No longer written: the writer now asks pg_xact_status()
        // about the transaction (a row not visible yet was taken for "not committed"); the table is left in place
        // for one release, so that instances of the previous version, still running during a rolling deployment,
        // keep working, and is dropped by a later migration.
        private const string CreateIngestBatches = """
            CREATE TABLE ingest_batches (
                id           uuid        NOT NULL CONSTRAINT pk_ingest_batches PRIMARY KEY,
                committed_at timestamptz NOT NULL DEFAULT now()
            );
            """;

        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql(CreateIngestBatches);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("DROP TABLE IF EXISTS ingest_batches;");
        }
    }
}
