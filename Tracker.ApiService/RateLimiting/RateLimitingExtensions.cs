using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Tracker.ApiService.Auth;
using Tracker.ApiService.Http;

namespace Tracker.ApiService.RateLimiting;

public static class RateLimitingExtensions
{
    /// <summary>
    /// ASP.NET Core's rate-limiting middleware with the three policies, each partitioned and decided in Redis (or in
    /// memory while Redis is unreachable); a refusal is a 429 ProblemDetails with Retry-After.
    /// </summary>
    public static IHostApplicationBuilder AddTrackerRateLimiting(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<RateLimitingOptions>().BindConfiguration(RateLimitingOptions.SectionName)
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<RateLimitingOptions>, RateLimitingOptionsValidator>();
        services.AddHttpContextAccessor();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<RedisRateStore>();
        services.AddSingleton<LocalRateStore>();
        services.AddSingleton<RateLimitingMetrics>();
        services.AddSingleton<RateLimitResponse>();
        services.AddSingleton<FailedAuthenticationLimit>();

        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<IOptions<RateLimitingOptions>, IServiceProvider>((limiter, configured, provider) =>
        {
            var options = configured.Value;
            var auth = new FixedWindowRule(RateLimitPolicies.Auth, options.Auth.PermitLimit, TimeSpan.FromSeconds(options.Auth.WindowSeconds));
            var usage = new FixedWindowRule(RateLimitPolicies.Usage, options.Usage.PermitLimit, TimeSpan.FromSeconds(options.Usage.WindowSeconds),
                TimeSpan.FromMilliseconds(options.Usage.LeaseMilliseconds));
            var ingest = new TokenBucketRule(RateLimitPolicies.Ingest, options.Ingest.BurstLimit, options.Ingest.TokensPerSecond,
                TimeSpan.FromMilliseconds(options.Ingest.LeaseMilliseconds), TimeSpan.FromMilliseconds(options.Ingest.SlowKeyLeaseMilliseconds),
                TimeSpan.FromMilliseconds(options.Ingest.QuietKeyLeaseMilliseconds));

            Add(limiter, auth, options.KeyPrefix, provider, http => ClientPartition.Of(http.Connection.RemoteIpAddress));
            Add(limiter, usage, options.KeyPrefix, provider, http => http.User.GetClientId().ToString("N"));
            Add(limiter, ingest, options.KeyPrefix, provider, http => http.User.GetApiKeyId().ToString("N"));
            limiter.OnRejected = RejectAsync;
        });
        return builder;
    }

    /// <summary>The rate-limiting middleware; after authentication, since policies are partitioned by client and key.</summary>
    public static IApplicationBuilder UseTrackerRateLimiting(this IApplicationBuilder app) =>
        app.ApplicationServices.GetRequiredService<IOptions<RateLimitingOptions>>().Value.Enabled ? app.UseRateLimiter() : app;

    private static void Add(RateLimiterOptions limiter, RateLimitRule rule, string keyPrefix, IServiceProvider provider, Func<HttpContext, string> partitionOf)
    {
        var prefix = keyPrefix + rule.Policy + ":";
        var decisions = ActivatorUtilities.CreateInstance<PolicyDecisions>(provider, rule);
        var response = provider.GetRequiredService<RateLimitResponse>();
        var time = provider.GetRequiredService<TimeProvider>();
        Func<string, RateLimiter> create = rule is TokenBucketRule { LeaseLifetime.Ticks: > 0 } or FixedWindowRule { LeaseLifetime.Ticks: > 0 }
            ? key => new LeasedRateLimiter(rule, key, decisions, response, time)
            : key => new PartitionRateLimiter(key, decisions, response, time);
        limiter.AddPolicy(rule.Policy, http => RateLimitPartition.Get(prefix + partitionOf(http), create));
    }

    private static async ValueTask RejectAsync(OnRejectedContext context, CancellationToken cancellationToken)
    {
        var http = context.HttpContext;
        var lease = context.Lease as DecisionLease;
        var retryAfter = TooManyRequests.Seconds(lease?.Decision?.RetryAfter ?? TimeSpan.FromSeconds(1));
        var policy = lease?.Rule?.Policy ?? "this";
        await TooManyRequests.WriteAsync(http, retryAfter, "Too many requests.", $"The {policy} rate limit is reached; retry after {retryAfter} s.");
    }
}
