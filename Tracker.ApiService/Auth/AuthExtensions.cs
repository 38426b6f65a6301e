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
        services.AddSingleton<RememberingTokenHandler>();

        services.AddAuthentication().AddJwtBearer();
        services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<IOptions<JwtOptions>, RememberingTokenHandler>((bearer, jwt, handler) => ConfigureBearer(bearer, jwt.Value, handler));

        services.AddAuthorizationBuilder()
            .AddPolicy(AuthPolicies.Client, policy => policy
                .AddAuthenticationSchemes(JwtBearerDefaults.AuthenticationScheme)
                .RequireAuthenticatedUser())
            .AddPolicy(AuthPolicies.Ingest, policy => policy
                .AddAuthenticationSchemes(ApiKeyAuthenticationHandler.SchemeName)
                .RequireAuthenticatedUser());
        return builder;
    }

    private static void ConfigureBearer(JwtBearerOptions bearer, JwtOptions jwt, RememberingTokenHandler handler)
    {
        bearer.MapInboundClaims = false;
        // The only handler: it remembers valid tokens.
        bearer.TokenHandlers.Clear();
        bearer.TokenHandlers.Add(handler);
        bearer.Events = new JwtBearerEvents
        {
            // A valid signature is not enough: the token must name a client that exists (cached lookup). Here, not in
            // the handler: an exception here (the database down) reaches the storage exception handler as a 503.
            OnTokenValidated = async context =>
            {
                var directory = context.HttpContext.RequestServices.GetRequiredService<ClientDirectory>();
                var subject = context.Principal?.FindFirst(JwtRegisteredClaimNames.Sub)?.Value;
                if (!Guid.TryParse(subject, out var clientId)
                    || !await directory.ExistsAsync(clientId, context.HttpContext.RequestAborted))
                {
                    context.Fail("The token names no existing client.");
                }
            },
        };
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
