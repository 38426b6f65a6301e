using Tracker.Data;
using Tracker.MigrationService;

var builder = Host.CreateApplicationBuilder(args);

builder.AddServiceDefaults();
builder.Services.AddOpenTelemetry().WithTracing(tracing => tracing.AddSource(MigrationWorker.ActivitySourceName));
builder.AddNpgsqlDbContext<TrackerDbContext>("trackerdb", configureDbContextOptions: TrackerDbContext.ConfigureConventions);
builder.Services.AddHostedService<MigrationWorker>();

builder.Build().Run();
