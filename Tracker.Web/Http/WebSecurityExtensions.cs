using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.StackExchangeRedis;
using StackExchange.Redis;
using Tracker.Web.Http;

namespace Microsoft.Extensions.Hosting;

public static class WebSecurityExtensions
{
    /// <summary>Redis key holding the data-protection key ring that encrypts cookies and antiforgery tokens.</summary>
    private const string KeyRingRedisKey = "tracker:web:data-protection-keys";

    /// <summary>
    /// Data protection with its key ring in Redis (<c>cache</c>), so every replica reads the cookies of the others and
    /// a restart signs nobody out; antiforgery for the forms.
    /// </summary>
    public static IHostApplicationBuilder AddWebSecurity(this IHostApplicationBuilder builder)
    {
        builder.AddRedisClient("cache");
        builder.Services.AddDataProtection().SetApplicationName("Tracker.Web");
        builder.Services.AddOptions<KeyManagementOptions>()
            .Configure<IConnectionMultiplexer>((options, redis) =>
                options.XmlRepository = new RedisXmlRepository(() => redis.GetDatabase(), KeyRingRedisKey));
        builder.Services.AddAntiforgery();
        return builder;
    }

    public static IApplicationBuilder UseSecurityHeaders(this IApplicationBuilder app) =>
        app.UseMiddleware<SecurityHeadersMiddleware>();
}
