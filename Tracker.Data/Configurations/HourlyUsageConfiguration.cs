using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Tracker.Data.Entities;

namespace Tracker.Data.Configurations;

internal sealed class HourlyUsageConfiguration : IEntityTypeConfiguration<HourlyUsage>
{
    public void Configure(EntityTypeBuilder<HourlyUsage> builder)
    {
        builder.ToTable("usage_hourly", table => table.HasCheckConstraint(
            "ck_usage_hourly_hour_start_whole_hour", "hour_start = date_trunc('hour', hour_start, 'UTC')"));

        // Serves "daily usage of one client" as a range scan and is the target of the ingest upsert.
        builder.HasKey(usage => new { usage.ClientId, usage.HourStart }).HasName("pk_usage_hourly");
        builder.Property(usage => usage.HourStart).HasColumnType("timestamptz");
        builder.Property(usage => usage.RequestCount).HasColumnType("bigint");

        // Serves "top clients in the last N hours" with an index-only scan over the window.
        builder.HasIndex(usage => usage.HourStart)
            .HasDatabaseName("ix_usage_hourly_hour_start")
            .IncludeProperties(usage => new { usage.ClientId, usage.RequestCount });

        builder.HasOne<Client>()
            .WithMany()
            .HasForeignKey(usage => usage.ClientId)
            .HasConstraintName("fk_usage_hourly_clients_client_id")
            .OnDelete(DeleteBehavior.Cascade);
    }
}
