using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tracker.ApiService.ApiKeys;

namespace Tracker.ApiService.Auth;

public static class AuthExtensions
{
    /// <summary>
    /// JWT bearer for owners, and one authorization policy for each way in: owners with a JWT, ingest with an API
    /// key (whose scheme <see cref="ApiKeysExtensions.AddApiKeys"/> adds).
    /// </summary>
    public static IHostApplicationBuilder AddTrackerAuthentication(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<JwtOptions>()
            .BindConfiguration(JwtOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();

        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<AccessTokenIssuer>();
        services.AddSingleton<PasswordHashing>();
        services.AddSingleton<ClientDirectory>();
        services.AddSingleton<RememberedTokens>();

        // AddJwtBearer's registrations with Tracker's handler, which remembers the tokens it validated. Its options are
        // Tracker's JwtOptions, not the Authentication:Schemes:Bearer section AddJwtBearer would also bind.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<JwtBearerOptions>, JwtBearerPostConfigureOptions>());
        services.AddAuthentication()
            .AddScheme<JwtBearerOptions, RememberingBearerHandler>(JwtBearerDefaults.AuthenticationScheme, displayName: null, configureOptions: null);
        services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<IOptions<JwtOptions>>((bearer, jwt) => ConfigureBearer(bearer, jwt.Value));

        services.AddAuthorizationBuilder()
            .AddPolicy(AuthPolicies.Client, policy => policy
                .AddAuthenticationSchemes(JwtBearerDefaults.AuthenticationScheme)
                .RequireAuthenticatedUser())
            .AddPolicy(AuthPolicies.Ingest, policy => policy
                .AddAuthenticationSchemes(ApiKeyAuthenticationHandler.SchemeName)
                .RequireAuthenticatedUser());
        return builder;
    }

    private static void ConfigureBearer(JwtBearerOptions bearer, JwtOptions jwt)
    {
        // Claims keep the names they have in the token ("sub").
        bearer.MapInboundClaims = false;
        // Nothing reads the token back from the ticket; storing it cost two dictionary entries per request.
        bearer.SaveToken = false;
        // Why a token failed (expired, bad signature, ...) is not told to the caller.
        bearer.IncludeErrorDetails = false;
        bearer.TokenValidationParameters = new TokenValidationParameters
        {
            ValidIssuer = jwt.Issuer,
            ValidAudience = jwt.Audience,
            IssuerSigningKey = new SymmetricSecurityKey(jwt.SigningKeyBytes()),
            // Pinned: "none", RS256 with a forged key, HS512... are all refused before the signature is read.
            ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
            ValidateIssuer = true,
            ValidateAudience = true,
            ValidateLifetime = true,
            ValidateIssuerSigningKey = true,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ClockSkew = TimeSpan.FromSeconds(jwt.ClockSkewSeconds),
            NameClaimType = JwtRegisteredClaimNames.Sub,
        };
    }
}
