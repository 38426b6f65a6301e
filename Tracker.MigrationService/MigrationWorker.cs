using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Tracker.Data;

namespace Tracker.MigrationService;

/// <summary>
/// Applies the pending EF Core migrations, then stops the process. The AppHost starts the API only once this
/// worker has exited successfully, so the API never sees an old schema. A failure is logged, recorded on the
/// trace and turned into a non-zero exit code, which the AppHost shows as a failed resource.
/// </summary>
internal sealed partial class MigrationWorker(
    IServiceProvider serviceProvider,
    IHostApplicationLifetime lifetime,
    ILogger<MigrationWorker> logger) : BackgroundService
{
    public const string ActivitySourceName = "Tracker.Migrations";

    private static readonly ActivitySource ActivitySource = new(ActivitySourceName);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var activity = ActivitySource.StartActivity("Migrate database", ActivityKind.Client);
        try
        {
            await using var scope = serviceProvider.CreateAsyncScope();
            var dbContext = scope.ServiceProvider.GetRequiredService<TrackerDbContext>();

            // The execution strategy retries transient failures (a server still starting) as a whole.
            var strategy = dbContext.Database.CreateExecutionStrategy();
            // MigrateAsync also creates the database on a fresh server, so nothing is queried before it.
            await strategy.ExecuteAsync(() => dbContext.Database.MigrateAsync(stoppingToken));
            var applied = (await dbContext.Database.GetAppliedMigrationsAsync(stoppingToken)).ToList();

            activity?.SetTag("tracker.migrations.count", applied.Count);
            LogMigrated(applied.Count, applied);
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            activity?.AddException(exception);
            activity?.SetStatus(ActivityStatusCode.Error, exception.Message);
            LogMigrationFailed(exception);
            Environment.ExitCode = 1;
        }

        lifetime.StopApplication();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Database is up to date with {Count} migration(s): {Migrations}")]
    private partial void LogMigrated(int count, IReadOnlyList<string> migrations);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Database migration failed; the API will not start")]
    private partial void LogMigrationFailed(Exception exception);
}
