using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Tracker.Data.Migrations
{
    /// <inheritdoc />
    public partial class DropIngestBatches : Migration
    {
        // The ingest writer no longer records batch ids to learn, after a connection died during COMMIT, whether a
        // batch was stored: a row not visible yet was taken for "not committed" while the old backend was still
        // committing, and the batch was written twice. It now asks pg_xact_status() about the transaction's id.
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("DROP TABLE IF EXISTS ingest_batches;");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                CREATE TABLE ingest_batches (
                    id           uuid        NOT NULL CONSTRAINT pk_ingest_batches PRIMARY KEY,
                    committed_at timestamptz NOT NULL DEFAULT now()
                );
                """);
        }
    }
}
