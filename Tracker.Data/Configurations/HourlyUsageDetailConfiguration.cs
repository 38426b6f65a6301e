using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Tracker.Data.Entities;

namespace Tracker.Data.Configurations;

internal sealed class HourlyUsageDetailConfiguration : IEntityTypeConfiguration<HourlyUsageDetail>
{
    public void Configure(EntityTypeBuilder<HourlyUsageDetail> builder)
    {
        builder.ToTable("usage_hourly_details", table =>
        {
            table.HasCheckConstraint("ck_usage_hourly_details_hour_start_whole_hour", "hour_start = date_trunc('hour', hour_start, 'UTC')");
            table.HasCheckConstraint("ck_usage_hourly_details_status_class", "status_class BETWEEN 0 AND 5");
        });

        // One client's window is a range scan of its prefix; the whole key is the target of the ingest upsert.
        builder.HasKey(detail => new { detail.ClientId, detail.HourStart, detail.Endpoint, detail.Method, detail.StatusClass, detail.ApiKeyId })
            .HasName("pk_usage_hourly_details");
        builder.Property(detail => detail.HourStart).HasColumnType("timestamptz");
        builder.Property(detail => detail.Endpoint).HasMaxLength(HourlyUsageDetail.EndpointMaxLength);
        builder.Property(detail => detail.Method).HasMaxLength(LogTable.MethodMaxLength);
        builder.Property(detail => detail.RequestCount).HasColumnType("bigint");
        builder.Property(detail => detail.Latency).HasColumnType("bigint[]");

        // Retention deletes old hours.
        builder.HasIndex(detail => detail.HourStart).HasDatabaseName("ix_usage_hourly_details_hour_start");

        builder.HasOne<Client>()
            .WithMany()
            .HasForeignKey(detail => detail.ClientId)
            .HasConstraintName("fk_usage_hourly_details_clients_client_id")
            .OnDelete(DeleteBehavior.Cascade);
    }
}
