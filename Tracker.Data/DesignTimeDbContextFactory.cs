using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Tracker.Data;

/// <summary>
/// Lets <c>dotnet ef migrations add</c> build the model without starting a host; it never connects,
/// so the connection string names no real server.
/// </summary>
internal sealed class DesignTimeDbContextFactory : IDesignTimeDbContextFactory<TrackerDbContext>
{
    public TrackerDbContext CreateDbContext(string[] args)
    {
        var options = new DbContextOptionsBuilder<TrackerDbContext>().UseNpgsql("Host=design-time-only");
        TrackerDbContext.ConfigureConventions(options);
        return new TrackerDbContext(options.Options);
    }
}
