using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Antiforgery;
using Tracker.Web.Account;

namespace Microsoft.Extensions.Hosting;

public static class AccountExtensions
{
    /// <summary>Cookie sign-in: the cookie is HttpOnly, same-site and expires with the API's access token.</summary>
    public static IHostApplicationBuilder AddCookieSignIn(this IHostApplicationBuilder builder)
    {
        builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme)
            .AddCookie(options =>
            {
                options.Cookie.Name = "tracker.session";
                options.Cookie.HttpOnly = true;
                options.Cookie.SameSite = SameSiteMode.Lax;
                options.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                options.LoginPath = CookieSession.LoginPath;
                options.AccessDeniedPath = CookieSession.LoginPath;
                options.SlidingExpiration = false;
            });
        builder.Services.AddAuthorization();
        builder.Services.AddCascadingAuthenticationState();
        return builder;
    }

    /// <summary>
    /// Maps <c>POST /account/logout</c>, which the header's form posts with its antiforgery token. A post without a
    /// valid token (another site's) signs nobody out and is sent to a page that says the form could not be used.
    /// </summary>
    public static WebApplication MapAccountEndpoints(this WebApplication app)
    {
        // Validated here rather than by binding a form field: a refusal then stays an ordinary redirect instead of
        // an exception re-executed, as a POST, into the error page.
        app.MapPost("/account/logout", static async (HttpContext context, IAntiforgery antiforgery) =>
        {
            if (!await antiforgery.IsRequestValidAsync(context))
            {
                return TypedResults.LocalRedirect("/status?code=400");
            }

            await context.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
            return TypedResults.LocalRedirect($"{CookieSession.LoginPath}?signedOut=true");
        });
        return app;
    }
}
