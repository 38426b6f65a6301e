using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Tracker.Data.Entities;

namespace Tracker.Data.Configurations;

internal sealed class StaleDailyUsageConfiguration : IEntityTypeConfiguration<StaleDailyUsage>
{
    public void Configure(EntityTypeBuilder<StaleDailyUsage> builder)
    {
        builder.ToTable("usage_daily_stale");

        // A read asks for one client's day; the compaction takes a day's marks, or the oldest.
        builder.HasKey(stale => new { stale.ClientId, stale.Day }).HasName("pk_usage_daily_stale");
        builder.HasIndex(stale => stale.Day).HasDatabaseName("ix_usage_daily_stale_day");

        builder.HasOne<Client>()
            .WithMany()
            .HasForeignKey(stale => stale.ClientId)
            .HasConstraintName("fk_usage_daily_stale_clients_client_id")
            .OnDelete(DeleteBehavior.Cascade);
    }
}
