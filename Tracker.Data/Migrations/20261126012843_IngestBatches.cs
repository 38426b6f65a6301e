using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Tracker.Data.Migrations
{
    /// <inheritdoc />
    public partial class IngestBatches : Migration
    {
        // One row per committed ingest batch, written in the batch's own transaction. When the connection dies
        // while COMMIT is in flight, the writer cannot know whether the batch was committed; this row tells it,
        // so it neither loses the batch nor writes it twice. Rows older than a day are pruned by maintenance.
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
