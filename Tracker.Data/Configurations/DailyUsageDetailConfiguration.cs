using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Tracker.Data.Entities;

namespace Tracker.Data.Configurations;

internal sealed class DailyUsageDetailConfiguration : IEntityTypeConfiguration<DailyUsageDetail>
{
    public void Configure(EntityTypeBuilder<DailyUsageDetail> builder)
    {
        builder.ToTable("usage_daily_details", table =>
            table.HasCheckConstraint("ck_usage_daily_details_status_class", "status_class BETWEEN 0 AND 5"));

        // A window's folded days are one range of the (client, day) prefix.
        builder.HasKey(detail => new { detail.ClientId, detail.Day, detail.Endpoint, detail.Method, detail.StatusClass, detail.ApiKeyId })
            .HasName("pk_usage_daily_details");
        builder.Property(detail => detail.Endpoint).HasMaxLength(HourlyUsageDetail.EndpointMaxLength);
        builder.Property(detail => detail.Method).HasMaxLength(LogTable.MethodMaxLength);
        builder.Property(detail => detail.RequestCount).HasColumnType("bigint");
        builder.Property(detail => detail.Latency).HasColumnType("bigint[]");

        // Retention deletes old days.
        builder.HasIndex(detail => detail.Day).HasDatabaseName("ix_usage_daily_details_day");

        builder.HasOne<Client>()
            .WithMany()
            .HasForeignKey(detail => detail.ClientId)
            .HasConstraintName("fk_usage_daily_details_clients_client_id")
            .OnDelete(DeleteBehavior.Cascade);
    }
}
