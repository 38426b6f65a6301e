using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Tracker.ApiService.Storage;

namespace Tracker.ApiService.Ingest;

public static class IngestExtensions
{
    public static IHostApplicationBuilder AddIngest(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<IngestOptions>().BindConfiguration(IngestOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<IngestOptions>, IngestRateLimitValidator>();
        services.AddOptions<RetentionOptions>().BindConfiguration(RetentionOptions.SectionName).ValidateDataAnnotations()
            .Validate(retention => retention.RollupDays >= retention.Days, "Retention:RollupDays must be at least Retention:Days.")
            .ValidateOnStart();

        services.ConfigureHttpJsonOptions(options => options.SerializerOptions.TypeInfoResolverChain.Insert(0, IngestJsonContext.Default));
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IUsageChangeObserver, NoUsageObserver>();
        services.AddSingleton<LogValidator>();
        services.AddSingleton<IdempotencyKeys>();
        services.AddSingleton<Ingestion>();
        services.AddSingleton<BatchAdmission>();
        services.AddSingleton<BatchPrepayment>();
        services.AddSingleton<IngestMetrics>();
        services.AddSingleton<AdmittedEndpoints>();
        // The writer's own few connections: one per writer loop, and one to spare for the rewrite of a batch found
        // aborted (see StorageExtensions.CreateDedicatedDataSource).
        services.AddKeyedSingleton(LogBatchCommitter.DataSourceKey, (provider, _) => StorageExtensions.CreateDedicatedDataSource(
            provider.GetRequiredService<IConfiguration>(), provider.GetRequiredService<ILoggerFactory>(),
            provider.GetRequiredService<IOptions<IngestOptions>>().Value.Writers + 2));
        services.AddSingleton<ILogBatchCommitter, LogBatchCommitter>();
        services.AddSingleton<LogBatchWriter>();
        services.AddHostedService(provider => provider.GetRequiredService<LogBatchWriter>());
        services.AddSingleton<PartitionMaintenance>();
        services.AddHostedService(provider => provider.GetRequiredService<PartitionMaintenance>());
        return builder;
    }
}
