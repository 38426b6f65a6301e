using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Tracker.Data.Entities;

namespace Tracker.Data.Configurations;

internal sealed class DailyUsageCompactionConfiguration : IEntityTypeConfiguration<DailyUsageCompaction>
{
    public void Configure(EntityTypeBuilder<DailyUsageCompaction> builder)
    {
        builder.ToTable("usage_daily_compaction", table =>
            table.HasCheckConstraint("ck_usage_daily_compaction_single_row", $"id = {DailyUsageCompaction.SingleRow}"));
        builder.HasKey(compaction => compaction.Id).HasName("pk_usage_daily_compaction");
        builder.Property(compaction => compaction.Id).ValueGeneratedNever();
    }
}
