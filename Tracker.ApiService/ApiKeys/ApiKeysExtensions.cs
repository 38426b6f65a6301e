using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Tracker.ApiService.ApiKeys;

public static class ApiKeysExtensions
{
    /// <summary>
    /// API keys: the authentication scheme ingest uses, the cached key lookup and what keeps it true after a
    /// revocation, and the recording of each key's last use.
    /// </summary>
    public static IHostApplicationBuilder AddApiKeys(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<ApiKeyUsageOptions>()
            .BindConfiguration(ApiKeyUsageOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();

        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<ApiKeyStore>();
        services.AddSingleton<RememberedKeys>();
        services.AddSingleton<RevocationWatch>();
        services.AddHostedService(provider => provider.GetRequiredService<RevocationWatch>());
        services.AddHostedService<RevocationReplay>();
        services.AddSingleton<ApiKeyUsageRecorder>();
        services.AddHostedService<ApiKeyUsageFlusher>();

        services.AddAuthentication()
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        return builder;
    }
}
