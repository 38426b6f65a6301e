using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Tracker.Data.Entities;

namespace Tracker.Data.Configurations;

internal sealed class HourlyUsageMarkConfiguration : IEntityTypeConfiguration<HourlyUsageMark>
{
    public void Configure(EntityTypeBuilder<HourlyUsageMark> builder)
    {
        builder.ToTable("usage_hourly_marks", table => table.HasCheckConstraint(
            "ck_usage_hourly_marks_hour_start_whole_hour", "hour_start = date_trunc('hour', hour_start, 'UTC')"));

        // Ingest's INSERT … ON CONFLICT DO NOTHING probes it; reads join a client's marks to its totals.
        builder.HasKey(mark => new { mark.ClientId, mark.HourStart }).HasName("pk_usage_hourly_marks");
        builder.Property(mark => mark.HourStart).HasColumnType("timestamptz");
        // Ingest inserts only the key: the database's clock stamps the mark, the clock the fold compares it with.
        builder.Property(mark => mark.MarkedAt).HasColumnType("timestamptz").HasDefaultValueSql("now()");

        builder.HasOne<Client>()
            .WithMany()
            .HasForeignKey(mark => mark.ClientId)
            .HasConstraintName("fk_usage_hourly_marks_clients_client_id")
            .OnDelete(DeleteBehavior.Cascade);
    }
}
