using Microsoft.EntityFrameworkCore;
using Tracker.Data.Entities;

namespace Tracker.Data;

/// <summary>
/// The relational model of Tracker. The activity-log table itself is not mapped: it is partitioned by day
/// (which EF Core cannot express), written only with binary COPY and read only through the hourly rollups.
/// Its schema lives in the migrations as SQL; <see cref="LogTable"/> names what the SQL creates.
/// </summary>
public sealed class TrackerDbContext(DbContextOptions<TrackerDbContext> options) : DbContext(options)
{
    public DbSet<Client> Clients => Set<Client>();

    public DbSet<ApiKey> ApiKeys => Set<ApiKey>();

    public DbSet<HourlyUsage> HourlyUsage => Set<HourlyUsage>();

    public DbSet<HourlyUsageMark> HourlyUsageMarks => Set<HourlyUsageMark>();

    public DbSet<HourlyUsageDetail> HourlyUsageDetails => Set<HourlyUsageDetail>();

    public DbSet<HourlyEndpointName> HourlyEndpointNames => Set<HourlyEndpointName>();

    public DbSet<DailyUsageDetail> DailyUsageDetails => Set<DailyUsageDetail>();

    public DbSet<DailyUsageCompaction> DailyUsageCompaction => Set<DailyUsageCompaction>();

    public DbSet<StaleDailyUsage> StaleDailyUsage => Set<StaleDailyUsage>();

    /// <summary>
    /// Options every registration of this context applies (the API, the migration worker, design time).
    /// Not in OnConfiguring: pooled contexts may not change their options there.
    /// </summary>
    public static void ConfigureConventions(DbContextOptionsBuilder optionsBuilder)
    {
        ArgumentNullException.ThrowIfNull(optionsBuilder);
        optionsBuilder.UseSnakeCaseNamingConvention();
    }

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.ApplyConfigurationsFromAssembly(typeof(TrackerDbContext).Assembly);
    }
}
