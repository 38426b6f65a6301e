using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Tracker.ApiService.Ingest;

namespace Tracker.ApiService.Usage;

public static class UsageExtensions
{
    /// <summary>
    /// Registers usage analytics and its cache freshness. Call before <c>AddIngest</c>: hosted services stop in
    /// reverse order, so the change publisher then stops after the log writer has drained and can publish its
    /// last commits.
    /// </summary>
    public static IHostApplicationBuilder AddUsageAnalytics(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<UsageOptions>().BindConfiguration(UsageOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.ConfigureHttpJsonOptions(options => options.SerializerOptions.TypeInfoResolverChain.Insert(0, UsageJsonContext.Default));
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<UsageMetrics>();
        services.AddSingleton<UsageQueries>();
        services.AddSingleton<UsageGenerations>();
        services.AddSingleton<IHybridCacheSerializer<SerializedAnswer?>, SerializedAnswer.Serializer>();
        services.AddSingleton<UsageAnswerCache>();
        services.AddSingleton<UsageStatistics>();
        services.AddSingleton<UsageBreakdownQueries>();
        services.AddSingleton<UsageBreakdowns>();
        services.AddSingleton<UsageChangePublisher>();
        services.AddSingleton<IUsageChangeObserver>(provider => provider.GetRequiredService<UsageChangePublisher>());
        services.AddHostedService(provider => provider.GetRequiredService<UsageChangePublisher>());
        services.AddSingleton<DailyCompaction>();
        services.AddHostedService(provider => provider.GetRequiredService<DailyCompaction>());
        services.AddSingleton<HourlyTotalsFold>();
        services.AddHostedService(provider => provider.GetRequiredService<HourlyTotalsFold>());
        return builder;
    }
}
