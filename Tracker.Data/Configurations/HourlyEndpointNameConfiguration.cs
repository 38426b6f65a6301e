using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Tracker.Data.Entities;

namespace Tracker.Data.Configurations;

internal sealed class HourlyEndpointNameConfiguration : IEntityTypeConfiguration<HourlyEndpointName>
{
    public void Configure(EntityTypeBuilder<HourlyEndpointName> builder)
    {
        builder.ToTable("usage_hourly_endpoints");

        // Counting one client-hour's endpoints is an index-only scan of at most the cap's rows.
        builder.HasKey(name => new { name.ClientId, name.HourStart, name.Endpoint }).HasName("pk_usage_hourly_endpoints");
        builder.Property(name => name.HourStart).HasColumnType("timestamptz");
        builder.Property(name => name.Endpoint).HasMaxLength(HourlyUsageDetail.EndpointMaxLength);

        // Retention deletes old hours.
        builder.HasIndex(name => name.HourStart).HasDatabaseName("ix_usage_hourly_endpoints_hour_start");

        builder.HasOne<Client>()
            .WithMany()
            .HasForeignKey(name => name.ClientId)
            .HasConstraintName("fk_usage_hourly_endpoints_clients_client_id")
            .OnDelete(DeleteBehavior.Cascade);
    }
}
